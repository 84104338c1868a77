# ocs-harness: each log line of an OCS agent carries its level and its logger's namespace.
#
# The harness copies this file into every agent container (through the engine's archive API)
# and appends its directory to PYTHONPATH; Python imports it at startup as `sitecustomize`.
# It changes nothing until the agent's own logging is set up:
#
# - txaio (what ocs agents log through): when `txaio.tx` is imported, its `_LogObserver`
#   (the observer `txaio.start_logging` installs) is replaced by a subclass that writes
#   MARK + "<level>:<namespace>" + END in front of each event's line;
# - Python `logging`: a StreamHandler writing to the process's stdout or stderr does the same
#   in front of each record.
#
# The harness strips the mark from every line it reads, so transcripts, log steps and saved
# logs see each line as the agent printed it. Whatever goes wrong here leaves the agent
# alone: its lines then simply carry no level. The image's own sitecustomize, if any, still
# runs (after this one).

import os
import sys

_MARK = "\x1eocsh:"
_END = "\x1f"


def _tag(level, namespace):
    ns = str(namespace or "")
    for bad in ("\x1f", "\n", "\r"):
        ns = ns.replace(bad, " ")
    return "%s%s:%s%s" % (_MARK, level, ns, _END)


def _tagged_event(event):
    """The event to format, and the tag its line starts with.

    Output printed to stdout or stderr after `start_logging` reaches the observer as an event
    of twisted's own (`log_io`, at info or error whatever it says): it gets no level of its
    own, so that the harness judges it by its words, unless it is a `logging` record that
    brings its tag along, which then goes in front of the line."""
    io = event.get("log_io")
    if io is None:
        level = getattr(event.get("log_level"), "name", None) or "critical"
        return event, _tag(level, event.get("log_namespace"))
    if isinstance(io, str) and io.startswith(_MARK) and _END in io:
        tag, rest = io.split(_END, 1)
        event = dict(event)
        event["log_io"] = rest
        return event, tag + _END
    return event, ""


def _patch_txaio(tx):
    base = tx._LogObserver
    if getattr(base, "_ocsh_levels", False):
        return

    class _Tagged(object):
        """The observer's file: the next write starts with the current event's tag."""

        def __init__(self, out):
            self._out = out
            self.tag = ""

        def write(self, msg):
            tag, self.tag = self.tag, ""
            if tag:
                msg = (tag.encode("utf8") if isinstance(msg, bytes) else tag) + msg
            return self._out.write(msg)

        def __getattr__(self, name):
            return getattr(self._out, name)

    class _LevelObserver(base):
        _ocsh_levels = True

        def __init__(self, out):
            base.__init__(self, out)
            self._file = _Tagged(out)

        def __call__(self, event):
            try:
                event, self._file.tag = _tagged_event(event)
            except Exception:
                self._file.tag = ""
            try:
                return base.__call__(self, event)
            finally:
                self._file.tag = ""

    try:
        from twisted.logger import ILogObserver
        from zope.interface import provider

        provider(ILogObserver)(_LevelObserver)
    except Exception:
        pass
    _LevelObserver.__name__ = base.__name__
    tx._LogObserver = _LevelObserver


def _level_of(levelno):
    for floor, name in ((50, "critical"), (40, "error"), (30, "warn"), (20, "info")):
        if levelno >= floor:
            return name
    return "debug"


def _is_std(stream):
    """Whether `stream` is the process's stdout or stderr (or twisted's stand-in for them)."""
    if type(stream).__name__ == "LoggingFile":
        return True
    try:
        return stream.fileno() in (1, 2)
    except Exception:
        return False


def _patch_logging(logging):
    handler = logging.StreamHandler
    if getattr(handler, "_ocsh_levels", False):
        return
    plain = handler.format

    def format(self, record):
        text = plain(self, record)
        try:
            if _is_std(self.stream):
                return _tag(_level_of(record.levelno), record.name) + text
        except Exception:
            pass
        return text

    handler.format = format
    handler._ocsh_levels = True


_PATCHES = {"txaio.tx": _patch_txaio, "logging": _patch_logging}


class _Finder(object):
    """Patches a module of _PATCHES right after it is first imported."""

    def find_spec(self, name, path=None, target=None):
        patch = _PATCHES.get(name)
        if patch is None:
            return None
        spec = None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module):
            run(module)
            try:
                patch(module)
            except Exception:
                pass

        try:
            loader.exec_module = exec_module
        except Exception:
            pass
        return spec


def _install():
    for name, patch in _PATCHES.items():
        if name in sys.modules:
            patch(sys.modules[name])
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def _chain():
    """Run the sitecustomize this file hides (Debian's, an image's own), if there is one."""
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    from importlib.machinery import PathFinder
    from importlib.util import module_from_spec

    spec = PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = module_from_spec(spec)
    sys.modules["_ocsh_next_sitecustomize"] = module
    spec.loader.exec_module(module)


try:
    _install()
except Exception:
    pass
try:
    _chain()
except Exception:
    pass
