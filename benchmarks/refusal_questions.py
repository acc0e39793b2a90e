"""Questions for ``refusal_bench.py``: when should search say "no good answer"? (issue 31)

Written on 2026-12-04, before any threshold was tuned, over a mixed real corpus: Python's HTML
documentation (python3-doc) and the real office files, mail and scans of
``refusal_corpus.tsv``. Entries at odd positions (1, 3, 5, …) of each list are the held-out
half: looked at only for the final figure, never while choosing thresholds.

- ``REAL``: questions a reader of one of the real documents would ask, with the file(s) that
  answer them (file names as exported: the mirror's short name, ``_``, the file's name);
- ``OFF_TOPIC``: questions nothing in the corpus answers, some with words that do occur in it
  (python, typewriter, drum, bank) to make refusing them harder;
- the Python answerable half reuses ``retrieval_questions.NATURAL[:40]`` (written before).
"""

from __future__ import annotations

LINN = ("ocrmypdf_cardinal.pdf", "ocrmypdf_linn.png", "ocrmypdf_linn.pdf", "ocrmypdf_skew.pdf")
OUTLOOK = ("apache_test-outlook2003.msg", "apache_testRTFHyperlink.rtf")

REAL: list[tuple[str, tuple[str, ...]]] = [
    ("speech on rethinking the financial network at the Bank of England",
     ("apache_testPDF_protected.pdf",)),
    ("how many credit default swap contracts was Lehman counterparty to",
     ("apache_testPDF_protected.pdf",)),
    ("control strategies for stress-engineered MEMS microrobots",
     ("apache_testJournalParser.pdf",)),
    ("untethered scratch drive actuator that gives forward propulsion",
     ("apache_testJournalParser.pdf",)),
    ("what does the PAN copy flag field mean in the KYC download file",
     ("apache_CVLKRA-KYC_Download_File_Structure_V3.1.xlsx",)),
    ("date format for the batch date in the KYC file structure",
     ("apache_CVLKRA-KYC_Download_File_Structure_V3.1.xlsx",)),
    ("how many tracks does each LinnSequencer sequence have", LINN),
    ("how do I erase a wrong note on the sequencer", LINN),
    ("which nutrient was limiting in the transcriptome experiment",
     ("apache_a_transcriptome.txt",)),
    ("how does the junk e-mail filter in Outlook 2003 work", OUTLOOK),
    ("add addresses to the safe senders list so mail is never junk", OUTLOOK),
    ("IntelliStation POWER workstation with the PowerPC 970 processor",
     ("apache_english.cp500.txt",)),
    ("práctica de GnuPG: generar la clave y el certificado de revocación",
     ("apache_testNPEOpenDocument.odt",)),
    ("terms and conditions of loans secured by mortgage bonds over freehold property",
     ("apache_testPDF_jpeg2000.pdf",)),
    ("what is an AccessBond facility", ("apache_testPDF_jpeg2000.pdf",)),
    ("yeast strain genotype and mating type of the samples", ("apache_s_BII-S-2.txt",)),
    ("driving along the Dalmatian coast to Dubrovnik", ("tesseract-ocr_8087_054.3B.tif",)),
    ("people in Croatia want revenge and to get even", ("tesseract-ocr_8087_054.3B.tif",)),
    ("she was desperately in love for the first time and her father took her hand",
     ("tesseract-ocr_8071_093.3B.tif",)),
    ("optical character recognition article from Wikipedia", ("ocrmypdf_epson.pdf",)),
    ("OCR as a field of research in pattern recognition and computer vision",
     ("ocrmypdf_epson.pdf",)),
    ("Jira comment about RFC822 messages not being parsed by Tika",
     ("apache_testRFC822_x-.eml",)),
    ("who will have a look at mime4j for the RFC822 bug", ("apache_testRFC822_x-.eml",)),
    ("table of record numbers with the square of each record number",
     ("apache_test-columnar.xlsx", "apache_test-columnar.csv", "apache_test-columnar.ods")),
    ("Linzensoep a la Waterman recipe with linzen, melk and kerrie",
     ("ocrmypdf_typewriter.png",)),
    ("mail from Jukka Zitting about MIME registry use cases", ("apache_testMSG.msg",)),
    ("Merci d'avoir choisi Microsoft Internet Explorer et Outlook Express",
     ("apache_test-outlook.msg",)),
    ("vredegerecht Houthalen-Helchteren voorlopig bewindvoerder",
     ("apache_testODTStyles3.odt",)),
    ("Portez ce vieux whisky au juge blond qui fume", ("ocrmypdf_francais.pdf",)),
    ("the quick brown fox jumps over the lazy dog and the spam e-mail",
     ("tesseract-ocr_eurotext.tif", "madmaze_test-european.jpg")),
    ("a lot of 12 point text to test the ocr code",
     ("tesseract-ocr_phototest.tif", "madmaze_test.jpg")),
    ("definitions of culture, society and health for medicine and health care",
     ("apache_testODP_NPE.odp",)),
    ("Континент-Недвижимость на рынке недвижимости Москвы", ("apache_big-preamble.html",)),
    ("Sardanapalus builded seven cities in a day",
     ("apache_testEPUB_multi-metadata-vals.epub",)),
    ("novel written by Joseph Conrad and Ford Madox Ford",
     ("apache_testEPUB_multi-metadata-vals.epub",)),
    ("markdown sample with bold, italic and struck through text", ("apache_testMARKDOWN.md",)),
    ("banks hoarded liquidity for fear of lending to infected banks",
     ("apache_testPDF_protected.pdf",)),
    ("size of the MicroStressBot in micrometres", ("apache_testJournalParser.pdf",)),
    ("overdubbing tracks and recording MIDI pitch bend and aftertouch", LINN),
    ("fortress walls at the foot of steep cliffs by the Adriatic Sea",
     ("tesseract-ocr_8087_054.3B.tif",)),
]

OFF_TOPIC: list[str] = [
    "What is the capital of Mongolia",
    "Who won the 1998 FIFA World Cup?",
    "xylophone quantum giraffe",
    "recipe for chocolate cake",
    "best hiking trails in the alps",
    "how to knit a wool scarf",
    "symptoms of the common cold",
    "cheap flights to lisbon in may",
    "how tall is mount everest",
    "who painted the mona lisa",
    "how many moons does jupiter have",
    "train my puppy to stop barking",
    "what is the boiling point of water on a high mountain",
    "lyrics of bohemian rhapsody",
    "how do I change a flat bicycle tyre",
    "when did the western roman empire fall",
    "grow tomatoes on a balcony",
    "how does a nuclear reactor produce electricity",
    "what is the population of brazil",
    "remove red wine stains from a carpet",
    "who wrote war and peace",
    "what causes the northern lights",
    "how long should I boil an egg",
    "rules of cricket for beginners",
    "speed of sound in water",
    "which vitamins are in spinach",
    "python snake venom antidote",
    "how do whales sleep",
    "exchange rate of the japanese yen",
    "tune a guitar by ear",
    "plot of the movie titanic",
    "file taxes as a freelancer in germany",
    "what is the tallest building in the world",
    "bake sourdough bread at home",
    "chemical formula of table salt",
    "how many players are on a basketball team",
    "best beaches in thailand",
    "who discovered penicillin",
    "fix a leaking kitchen tap",
    "price of a new typewriter ribbon",
    "which bank has the best savings interest rate",
    "history of the electronic drum machine",
]


def halves(items: list) -> dict[str, list]:  # type: ignore[type-arg]
    """The development half (even positions) and the held-out half (odd positions)."""
    return {"dev": items[0::2], "held-out": items[1::2]}
