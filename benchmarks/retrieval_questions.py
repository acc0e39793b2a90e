"""Questions for ``retrieval_bench.py`` over Python's HTML documentation (Debian python3-doc).

Each entry: the question as a user would type it, and the page(s) that answer it (paths under
/usr/share/doc/python3-doc/html). Written from knowing the library, not copied from headings.
Entries at odd positions (1, 3, 5, …) are the held-out half: looked at only for the final
figure, never while choosing defaults.
"""

from __future__ import annotations

NATURAL: list[tuple[str, tuple[str, ...]]] = [
    ("how can I read rows from a spreadsheet exported as comma separated values",
     ("library/csv.html",)),
    ("run an external program and capture what it prints", ("library/subprocess.html",)),
    ("find all files matching a wildcard pattern like *.txt in a folder",
     ("library/glob.html",)),
    ("make a copy of a nested list so that changing it does not change the original",
     ("library/copy.html",)),
    ("turn a dictionary into a string that JavaScript can read", ("library/json.html",)),
    ("start work in the background and wait for it with a lock so two workers don't clash",
     ("library/threading.html",)),
    ("count how many times each word occurs in a list", ("library/collections.html",)),
    ("save an arbitrary Python object to disk and load it back later",
     ("library/pickle.html",)),
    ("compute a checksum of a file's bytes such as sha256", ("library/hashlib.html",)),
    ("add three days to a date and find the weekday", ("library/datetime.html",)),
    ("pick a random element from a list and shuffle it", ("library/random.html",)),
    ("read an ini style settings file with sections and key = value lines",
     ("library/configparser.html",)),
    ("shrink a file with gzip compression and read it back", ("library/gzip.html",)),
    ("create a scratch file that disappears when it is closed", ("library/tempfile.html",)),
    ("measure how long a small snippet of code takes to execute", ("library/timeit.html",)),
    ("send an email through a mail server", ("library/smtplib.html",)),
    ("download a web page over http and read the response", ("library/urllib.request.html",)),
    ("write diagnostic messages with different severity levels to a file",
     ("library/logging.html",)),
    ("pull out parts of a string that match a pattern using groups", ("library/re.html",)),
    ("run several coroutines at the same time and wait for all of them",
     ("library/asyncio-task.html",)),
    ("loop over every pair of items from a list without repeats",
     ("library/itertools.html",)),
    ("remember the results of an expensive function so repeated calls are fast",
     ("library/functools.html",)),
    ("write automated tests with test cases and assertions", ("library/unittest.html",)),
    ("copy a whole folder with everything inside to another place", ("library/shutil.html",)),
    ("read the value of an environment variable of the process", ("library/os.html",)),
    ("join folder names and file names and get a file's suffix, object oriented",
     ("library/pathlib.html",)),
    ("declare a class with typed fields and get __init__ and __repr__ generated",
     ("library/dataclasses.html",)),
    ("give a fixed set of named constants their own type", ("library/enum.html",)),
    ("add up money amounts exactly without binary floating point rounding",
     ("library/decimal.html",)),
    ("average and standard deviation of a list of numbers", ("library/statistics.html",)),
    ("list the members of a zip archive and extract them", ("library/zipfile.html",)),
    ("keep data in a small SQL database stored in a single file", ("library/sqlite3.html",)),
    ("parse an XML document and walk through its elements",
     ("library/xml.etree.elementtree.html",)),
    ("always get the smallest item first from a collection that keeps changing",
     ("library/heapq.html",)),
    ("find where to insert a value so that a list stays sorted", ("library/bisect.html",)),
    ("print a deeply nested structure with indentation so it is readable",
     ("library/pprint.html",)),
    ("annotate a function parameter that should be a callable returning an int",
     ("library/typing.html",)),
    ("serve the files of the current folder over http quickly",
     ("library/http.server.html",)),
    ("ask the user for a password in the terminal without showing it",
     ("library/getpass.html",)),
    ("what happens when an error occurs and how do I catch it and clean up",
     ("tutorial/errors.html",)),
    ("how do I loop over a dictionary's keys and values and what are tuples",
     ("tutorial/datastructures.html",)),
    ("how do default values for function arguments and keyword arguments work",
     ("tutorial/controlflow.html",)),
    ("how do I define my own class with methods and inherit from another",
     ("tutorial/classes.html",)),
    ("how do I open a text file, write to it and be sure it gets closed",
     ("tutorial/inputoutput.html",)),
    ("set up an isolated environment with its own installed packages",
     ("tutorial/venv.html", "library/venv.html")),
    ("encode binary data as printable ascii text and decode it again",
     ("library/base64.html",)),
    ("let my script accept flags and options on the command line",
     ("library/argparse.html",)),
    ("why does 0.1 + 0.2 not print exactly 0.3", ("tutorial/floatingpoint.html",)),
]

# Pasted as users paste them; found only if the top hit is the page AND its chunk holds the
# identifier's last part (a chunk that merely sits on the right page does not count).
IDENTIFIERS: list[tuple[str, tuple[str, ...]]] = [
    ("SO_REUSEADDR", ("library/socket.html",)),
    ("os.replace", ("library/os.html",)),
    ("maxsplit", ("library/stdtypes.html", "library/re.html")),
    ("O_NONBLOCK", ("library/os.html",)),
    ("shutil.copytree", ("library/shutil.html",)),
    ("json.JSONDecodeError", ("library/json.html",)),
    ("csv.DictReader", ("library/csv.html",)),
    ("functools.lru_cache", ("library/functools.html",)),
    ("itertools.groupby", ("library/itertools.html",)),
    ("subprocess.CalledProcessError", ("library/subprocess.html",)),
    ("sqlite3.Row", ("library/sqlite3.html",)),
    ("asyncio.gather", ("library/asyncio-task.html",)),
    ("tempfile.NamedTemporaryFile", ("library/tempfile.html",)),
    ("logging.basicConfig", ("library/logging.html",)),
    ("re.IGNORECASE", ("library/re.html",)),
    ("AF_INET6", ("library/socket.html",)),
    ("ZIP_DEFLATED", ("library/zipfile.html",)),
    ("errno.EEXIST", ("library/errno.html",)),
    ("struct.unpack", ("library/struct.html",)),
    ("hashlib.pbkdf2_hmac", ("library/hashlib.html",)),
    ("ssl.CERT_REQUIRED", ("library/ssl.html",)),
    ("time.monotonic", ("library/time.html",)),
    ("shlex.quote", ("library/shlex.html",)),
    ("textwrap.dedent", ("library/textwrap.html",)),
    ("heapq.nlargest", ("library/heapq.html",)),
    ("bisect.insort", ("library/bisect.html",)),
]

# Questions these docs cannot answer: a search should say so rather than return noise.
UNANSWERABLE = [
    "recipe for chocolate cake",
    "best hiking trails in the alps",
    "how to knit a wool scarf",
    "who won the football world cup",
    "symptoms of the common cold",
    "cheap flights to lisbon in may",
]


def halves(items: list[tuple[str, tuple[str, ...]]]) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """The development half (even positions) and the held-out half (odd positions)."""
    return {"dev": items[0::2], "held-out": items[1::2]}
