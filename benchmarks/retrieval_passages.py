"""What the answering passage holds, for ``retrieval_bench.py``'s passage@1.

Written on 2026-12-05 00:55–01:20 UTC, before any change to how a document's passage is chosen
(issue #31 item 4), from knowing the library: for each natural question, the names or words
that a passage answering it shows. Passage@1 counts a question when the top result is a gold
page *and* its shown chunk holds one of them (case-insensitive). Every term was checked to
occur on a gold page, nothing else; none was changed after a search was run.
"""

from __future__ import annotations

PASSAGES: dict[str, tuple[str, ...]] = {
    # NATURAL
    "how can I read rows from a spreadsheet exported as comma separated values":
        ("csv.reader", "DictReader"),
    "run an external program and capture what it prints": ("capture_output", "check_output"),
    "find all files matching a wildcard pattern like *.txt in a folder": ("glob.glob",),
    "make a copy of a nested list so that changing it does not change the original":
        ("deepcopy", "deep copy"),
    "turn a dictionary into a string that JavaScript can read": ("json.dumps",),
    "start work in the background and wait for it with a lock so two workers don't clash":
        ("acquire(", "Lock objects"),
    "count how many times each word occurs in a list": ("Counter",),
    "save an arbitrary Python object to disk and load it back later":
        ("pickle.dump", "pickle.load"),
    "compute a checksum of a file's bytes such as sha256": ("sha256", "file_digest"),
    "add three days to a date and find the weekday": ("timedelta", "weekday()"),
    "pick a random element from a list and shuffle it": ("random.choice", "random.shuffle"),
    "read an ini style settings file with sections and key = value lines":
        ("ConfigParser", "[DEFAULT]"),
    "shrink a file with gzip compression and read it back": ("gzip.open", "copyfileobj"),
    "create a scratch file that disappears when it is closed":
        ("TemporaryFile", "NamedTemporaryFile"),
    "measure how long a small snippet of code takes to execute": ("timeit.timeit", "Timer"),
    "send an email through a mail server": ("SMTP(", "sendmail", "send_message"),
    "download a web page over http and read the response": ("urlopen",),
    "write diagnostic messages with different severity levels to a file":
        ("basicConfig", "FileHandler"),
    "pull out parts of a string that match a pattern using groups":
        ("group(", "groups(", "Match.group"),
    "run several coroutines at the same time and wait for all of them":
        ("asyncio.gather", "TaskGroup"),
    "loop over every pair of items from a list without repeats": ("combinations",),
    "remember the results of an expensive function so repeated calls are fast":
        ("lru_cache", "functools.cache", "@cache"),
    "write automated tests with test cases and assertions": ("TestCase", "assertEqual"),
    "copy a whole folder with everything inside to another place": ("copytree",),
    "read the value of an environment variable of the process": ("os.environ", "getenv"),
    "join folder names and file names and get a file's suffix, object oriented":
        ("PurePath.suffix", ".suffix", "joinpath"),
    "declare a class with typed fields and get __init__ and __repr__ generated":
        ("@dataclass",),
    "give a fixed set of named constants their own type": ("class Enum", "Enum"),
    "add up money amounts exactly without binary floating point rounding":
        ("Decimal(",),
    "average and standard deviation of a list of numbers": ("stdev", "pstdev"),
    "list the members of a zip archive and extract them":
        ("namelist", "infolist", "extractall"),
    "keep data in a small SQL database stored in a single file":
        ("sqlite3.connect", "connect("),
    "parse an XML document and walk through its elements": ("ET.parse", "getroot", "iter("),
    "always get the smallest item first from a collection that keeps changing":
        ("heappop", "heappush"),
    "find where to insert a value so that a list stays sorted": ("bisect_left", "insort"),
    "print a deeply nested structure with indentation so it is readable":
        ("pprint.pprint", "pp(", "indent"),
    "annotate a function parameter that should be a callable returning an int":
        ("Callable[",),
    "serve the files of the current folder over http quickly":
        ("python -m http.server", "SimpleHTTPRequestHandler"),
    "ask the user for a password in the terminal without showing it": ("getpass(",),
    "what happens when an error occurs and how do I catch it and clean up":
        ("finally", "except"),
    "how do I loop over a dictionary's keys and values and what are tuples":
        ("items()",),
    "how do default values for function arguments and keyword arguments work":
        ("Default Argument Values", "Keyword Arguments", "default value"),
    "how do I define my own class with methods and inherit from another":
        ("DerivedClassName", "Inheritance"),
    "how do I open a text file, write to it and be sure it gets closed":
        ("with open", "f.write", "f.close"),
    "set up an isolated environment with its own installed packages":
        ("python -m venv", "venv"),
    "encode binary data as printable ascii text and decode it again":
        ("b64encode", "b64decode"),
    "let my script accept flags and options on the command line": ("add_argument",),
    "why does 0.1 + 0.2 not print exactly 0.3": ("binary fraction", ".1 + .1 + .1"),
    # FRESH
    "is this string a valid IPv4 or IPv6 address, and is it inside a given subnet":
        ("ip_address", "ip_network"),
    "show what changed between two versions of a text file as a unified diff":
        ("unified_diff",),
    "generate an unguessable token for a password reset link":
        ("token_urlsafe", "token_hex"),
    "break a long paragraph into lines no wider than 70 characters":
        ("textwrap.wrap", "textwrap.fill", "width"),
    "convert a meeting time from New York time to Tokyo time":
        ("ZoneInfo", "astimezone"),
    "load settings from a pyproject style TOML file": ("tomllib.load",),
    "give every record a globally unique random id": ("uuid4",),
    "spread a CPU heavy function over several processes and collect the results":
        ("Pool", "ProcessPoolExecutor"),
    "log the full stack of an exception and keep the program running":
        ("print_exc", "format_exc", "print_exception"),
    "find out which lines of my program allocate the most memory":
        ("take_snapshot", "statistics('lineno')"),
    "see which functions my script spends most of its time in": ("cProfile",),
    "stop my program at a line and inspect the variables interactively":
        ("breakpoint()", "set_trace"),
    "pack a folder into a .tar.gz file": ("w:gz", "make_archive"),
    "keep one third as an exact value instead of 0.3333": ("Fraction(",),
    "take the square root of -1 and get a complex number": ("cmath.sqrt", "sqrt("),
    "guess the content type of a file from its name, like image/png": ("guess_type",),
    "make user text safe to put in an html page by escaping < and &": ("html.escape",),
    "split a web address into its host, path and query parameters":
        ("urlparse", "urlsplit", "parse_qs"),
    "call a function in a C shared library directly from Python": ("CDLL", "cdll"),
    "run some cleanup code automatically when the interpreter shuts down":
        ("atexit.register",),
    "react to Ctrl+C or a termination request sent to my process":
        ("signal.signal", "SIGINT", "SIGTERM"),
    "hand jobs from one thread to worker threads safely":
        ("q.put", "q.get", "task_done"),
    "cache objects without keeping them alive so they can still be garbage collected":
        ("WeakValueDictionary", "weak reference"),
    "write a generator function that can be used in a with statement":
        ("@contextmanager",),
    "force subclasses to implement a method before they can be instantiated":
        ("abstractmethod",),
    "get the parameter names and source code of a function at run time":
        ("signature(", "getsource"),
    "compress bytes in memory with deflate without writing a file": ("zlib.compress",),
    "compress a file with the xz format": ("lzma.open", "FORMAT_XZ"),
    "a dictionary-like store of Python objects that lives on disk between runs":
        ("shelve.open", "dbm.open"),
    "read pieces of a huge file through virtual memory without loading it all":
        ("mmap.mmap", "mmap("),
    "loop over the lines of all files given on the command line, or standard input":
        ("fileinput.input",),
    "compare two folders and list the files that differ": ("dircmp", "diff_files"),
    "check whether a file name matches a shell-style pattern without listing the disk":
        ("fnmatch.fnmatch", "fnmatch("),
    "format numbers with the thousands separator of the user's country":
        ("grouping", "locale.format_string", "thousands"),
    "translate the messages of my program into other languages":
        ("gettext.translation", "_(", "install("),
    "look up the official name and category of a unicode character":
        ("unicodedata.name", "category("),
    "split a command line string into arguments the way a shell would, honouring quotes":
        ("shlex.split",),
    "wait on many sockets at once until one of them can be read":
        ("DefaultSelector", "register(", "select("),
    "write a small TCP server that serves each client in its own thread":
        ("ThreadingTCPServer", "ThreadingMixIn"),
    "replace a call to an outside service with a fake object in a test":
        ("patch(", "Mock("),
    "check that the examples written in my docstrings still produce that output":
        ("doctest.testmod", "testmod("),
    "open a link in the user's web browser from a script": ("webbrowser.open",),
    "draw shapes with a moving pen, as used to teach children programming":
        ("forward(", "Turtle"),
    "find out which operating system and machine type the code is running on":
        ("platform.system", "platform.machine", "system()", "machine()"),
    "limit the CPU time or memory my process may use":
        ("setrlimit", "RLIMIT_CPU", "RLIMIT_AS"),
    "read and write Apple plist files": ("plistlib.load", "plistlib.dump"),
    "walk the syntax tree of some Python source code": ("NodeVisitor", "ast.walk"),
    "see the bytecode instructions a function was compiled to": ("dis.dis", "dis("),
    "order tasks so that each one comes after everything it depends on":
        ("TopologicalSorter", "static_order"),
    "print a month's calendar as plain text": ("TextCalendar", "prmonth", "calendar.month"),
    "suggest the closest known word for a misspelled one": ("get_close_matches",),
    "what is a list comprehension and how do I write one": ("List Comprehensions",
                                                            "list comprehension"),
    "how do I split my program into several files and import one from another":
        ("import fibo", "fibo"),
    "how do I put a variable's value inside a string with two decimal places":
        (".2f",),
    # FRESH_2
    "pack an integer and a float into bytes with a fixed binary layout like a C struct":
        ("struct.pack", "pack("),
    "greatest common divisor of two integers": ("math.gcd", "gcd("),
    "run a function once after a delay of a few seconds without blocking":
        ("Timer(", "enter("),
    "copy a file together with its permissions and modification time": ("copy2",),
    "store a long sequence of numbers compactly as machine values, not Python objects":
        ("array.array", "typecode"),
    "a dictionary that creates a default value for a key that is missing":
        ("defaultdict",),
    "how many ways are there to choose 3 items out of 10": ("math.comb", "comb("),
    "start a new log file when the current one grows too big":
        ("RotatingFileHandler", "maxBytes"),
    "configure loggers and handlers from a dictionary of settings": ("dictConfig",),
    "give up on an awaited operation if it takes longer than five seconds":
        ("wait_for", "asyncio.timeout"),
    "open a network connection with asyncio and read lines from it":
        ("open_connection", "readline"),
    "start a child process from a coroutine and read its output without blocking":
        ("create_subprocess_exec", "create_subprocess_shell"),
    "go through the attachments of an email message":
        ("iter_attachments", "walk()"),
    "decode text encoded as quoted-printable": ("quopri.decode", "decodestring", "decode("),
    "read the sample rate and number of frames of a WAV sound file":
        ("getframerate", "getnframes"),
    "sign a message with a secret key so the receiver can check it was not changed":
        ("hmac.new", "digest("),
    "compare two secret strings without leaking timing information": ("compare_digest",),
    "read a file compressed with bzip2": ("bz2.open", "BZ2File"),
    "build an interactive shell for my tool with its own commands and a prompt":
        ("cmdloop", "do_"),
    "full screen text user interface with colours in the terminal":
        ("init_pair", "start_color", "color_pair"),
    "how wide is the terminal window in columns": ("get_terminal_size",),
    "find where an executable is installed on the PATH, like the which command":
        ("shutil.which", "which("),
    "convert a colour from RGB to HSV": ("rgb_to_hsv",),
    "print the Python stack of every thread when the interpreter crashes":
        ("faulthandler.enable", "all_threads"),
    "turn warnings into exceptions while running my tests":
        ("\"error\"", "-W error", "simplefilter"),
    "import a module from a file path given as a string":
        ("spec_from_file_location", "import_module"),
    "open a data file that is shipped inside my package": ("files(", "open_text",
                                                           "read_text"),
    "which version of an installed distribution package is present": ("version(",),
    "share a block of memory between processes without copying": ("SharedMemory(",),
    "run many downloads in a thread pool and handle each result as soon as it is ready":
        ("as_completed",),
    "allow at most three workers to use a resource at the same time":
        ("Semaphore", "BoundedSemaphore"),
    "keep a per-request value that follows asyncio tasks instead of threads":
        ("ContextVar",),
    "look up a user's home directory and login shell from the password database":
        ("getpwnam", "pw_dir", "pw_shell"),
    "make a file read-only by changing its permission bits": ("chmod",),
    "resolve a host name to its IP address": ("gethostbyname", "getaddrinfo"),
    "wrap a socket in TLS and verify the server's certificate":
        ("wrap_socket", "create_default_context"),
    "fetch messages from a mailbox on a mail server": ("IMAP4", "POP3", "fetch(", "retr("),
    "send an HTTP request with a custom header":
        ("headers=", "add_header", "putheader", "request("),
    "parse a Set-Cookie header and build one to send back": ("SimpleCookie",),
    "call a function on a remote server over XML-RPC": ("ServerProxy",),
    "write a spreadsheet file that uses semicolons instead of commas":
        ("delimiter",),
    "the current time in UTC as an ISO 8601 string": ("isoformat", "timezone.utc"),
    "measure elapsed time precisely for benchmarking": ("perf_counter",),
    "round 2.675 to two decimals and get the answer a person expects":
        ("2.675", "quantize", "ROUND_HALF_UP"),
    "what do *args and **kwargs mean in a function definition":
        ("*arguments", "**keywords", "*args"),
    "what is a package, and what is the __init__.py file for": ("__init__.py",),
    "check whether an object is an instance of a class or of one of its subclasses":
        ("isinstance",),
    "sort a list of dictionaries by the value of one key": ("itemgetter", "key="),
    "convert an integer to bytes in little endian order": ("to_bytes",),
    "a read-only view of a dictionary that still reflects later changes":
        ("MappingProxyType",),
    "collect the plain text between the tags of an html page":
        ("handle_data",),
    "treat a bytes value as a file object in memory": ("BytesIO",),
}
