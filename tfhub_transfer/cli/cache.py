"""`tfhub-transfer cache list|clear`: what the package's cache holds, and freeing it.

The cache (`--cache-dir`, else `$TFHUB_TRANSFER_CACHE`, else `~/.cache/tfhub_transfer`) holds
feature caches (`features/`) and converted encoders with their bfloat16 copies (`encoders/`).
`clear` removes the feature caches and what interrupted writes left (partial entries, temporaries);
`clear --all` everything this package wrote there, after asking (or with `--yes`). A directory without
the package's marker file, an entry holding a file someone else put there, and a symbolic link are never
deleted (nor followed); `clear` says which it left.
"""

from __future__ import annotations

import sys

from tfhub_transfer.cache import CacheEntry, cache_entries, format_size, removable, remove_entry, use_cache_dir
from tfhub_transfer.errors import ConfigError

FEATURE_KINDS = ("features", "token features", "partial")  # what `clear` removes without --all


def add_parser(sub) -> None:
    p = sub.add_parser("cache", help="list or clear the package's cache (feature caches, converted encoders)")
    actions = p.add_subparsers(dest="cache_action", required=True)
    listing = actions.add_parser("list", help="each cached item with its size, and the total")
    clear = actions.add_parser("clear", help="remove the feature caches (--all: everything this package "
                                             "wrote in the cache)")
    for q in (listing, clear):
        q.add_argument("--cache-dir", help="the cache to work on (default: $TFHUB_TRANSFER_CACHE, else "
                                           "~/.cache/tfhub_transfer)")
    clear.add_argument("--all", action="store_true",
                       help="also the converted encoders and their copies (converted again when next used)")
    clear.add_argument("--yes", action="store_true", help="do not ask before --all (needed without a terminal)")


def run(args) -> int:
    with use_cache_dir(args.cache_dir) as root:
        entries = cache_entries(root)
        if args.cache_action == "list":
            print(listing(root, entries))
            return 0
        return _clear(root, entries, args.all, args.yes)


def listing(root, entries: list[CacheEntry]) -> str:
    """The cache's items, one a line (kind, size, path, what it is), and the total."""
    if not entries:
        return f"the cache {root} is empty"
    lines = [f"cache {root}:"]
    for entry in entries:
        lines.append(f"  {entry.kind:<14} {format_size(entry.size):>9}  {entry.path}  ({entry.about})")
    total = sum(e.size for e in entries)
    lines.append(f"total: {len(entries)} item{'s' if len(entries) != 1 else ''}, {format_size(total)}")
    return "\n".join(lines)


def _clear(root, entries: list[CacheEntry], everything: bool, yes: bool) -> int:
    # Links are listed among what `clear` looked at, to say they are left (never followed, never counted).
    wanted = [e for e in entries if everything or e.kind in (*FEATURE_KINDS, "link")]
    chosen = [e for e in wanted if removable(e)]
    size = format_size(sum(e.size for e in chosen))
    if not chosen:
        print(f"nothing to remove in {root}")
        _report_left(wanted, everything)
        return 0
    if everything and not yes:
        question = f"remove {len(chosen)} items ({size}) from {root}, converted encoders included?"
        if not sys.stdin.isatty():
            raise ConfigError(f"cache clear --all would {question[:-1]}; pass --yes to confirm (there is no "
                              "terminal to ask on)")
        if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 1
    for entry in chosen:
        remove_entry(entry)
    print(f"removed {len(chosen)} item{'s' if len(chosen) != 1 else ''} ({size}) from {root}")
    _report_left(wanted, everything)
    return 0


def _report_left(wanted: list[CacheEntry], everything: bool) -> None:
    """Says what `clear` left and why: files someone else put inside an entry, links, running writes."""
    for entry in wanted:
        if entry.foreign:
            print(f"left {entry.path}: it holds {', '.join(str(p) for p in entry.foreign[:3])}, which tfhub_transfer "
                  "did not write (move that out and clear again)")
        elif entry.kind == "link":
            print(f"left {entry.path}: {entry.about}")
        elif entry.kind == "partial" and not entry.ours:
            print(f"left {entry.path}: {entry.about}")
    foreign = [e for e in wanted if not e.ours and e.kind not in ("link", "partial")]
    if everything and foreign:
        print(f"left {len(foreign)} item(s) this package did not write: " + ", ".join(str(e.path) for e in foreign))
