"""Build fmtlab/data/stdlib_docstrings.txt from CPython standard-library docstrings."""
import importlib, inspect, re, sys
MODULES = ["textwrap", "string", "functools", "collections", "heapq", "bisect", "random", "statistics",
           "fractions", "json", "argparse", "shutil", "difflib", "calendar", "pprint", "dataclasses",
           "contextlib", "enum", "copy", "csv", "fnmatch", "glob", "gzip", "zipfile", "pathlib",
           "tempfile", "logging", "threading", "queue", "sched", "shlex", "base64", "tokenize", "inspect",
           "ast", "codecs", "configparser", "datetime", "decimal", "email.message", "ftplib", "getopt",
           "gettext", "hashlib", "hmac", "http.client", "imaplib", "ipaddress", "locale", "mailbox",
           "mimetypes", "numbers", "operator", "optparse", "os", "pickle", "platform", "plistlib",
           "poplib", "profile", "pstats", "quopri", "reprlib", "secrets", "selectors", "smtplib",
           "socket", "socketserver", "sqlite3", "ssl", "subprocess", "tarfile", "timeit", "trace",
           "traceback", "types", "typing", "unittest", "urllib.parse", "uuid", "warnings", "wave",
           "weakref", "webbrowser", "zipapp"]
LIMIT = 120_000
chunks = []
seen = set()
for name in MODULES:
    module = importlib.import_module(name)
    docs = [inspect.getdoc(module)]
    for attribute, value in sorted(vars(module).items()):
        if attribute.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(value) or inspect.isfunction(value):
            docs.append(inspect.getdoc(value))
            if inspect.isclass(value):
                for method_name, method in sorted(vars(value).items()):
                    if not method_name.startswith("_") and inspect.isfunction(method):
                        docs.append(inspect.getdoc(method))
    for doc in docs:
        if not doc or doc in seen:
            continue
        seen.add(doc)
        text = doc.encode("ascii", "ignore").decode()
        text = "".join(c for c in text if c == "\n" or 32 <= ord(c) < 127)
        text = re.sub(r"\n{3,}", "\n\n", text).strip()
        if len(text) > 40:
            chunks.append(text)
text = "\n\n".join(chunks)[:LIMIT]
text = text[:text.rfind("\n\n")] + "\n"
open(sys.argv[1], "w").write(text)
print(len(text), "characters,", len(set(text)), "distinct")
