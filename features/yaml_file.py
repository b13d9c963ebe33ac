"""Reading the YAML files the tool takes (training configs, column mappings, BIDS mappings).

One reader, so every one of them fails the same way: an error of the caller's class (exit 2)
naming the file, never a parser traceback. PyYAML's safe loader is tightened in two ways it does not
offer itself: a repeated key is an error (plain YAML lets the last one win silently, so a typo
could map CRP onto IL-6), and aliases are refused (they allow exponential "billion laughs" files,
and none of our files needs them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ketamine_response.features.errors import CohortFileError, KetamineResponseError

MAX_BYTES = 1_000_000  # our YAML files are a few kB; a bigger one is not one of them


class _StrictLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed", mark)
        return super().compose_node(parent, index)


def _unique_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # '<<' merges need aliases, refused above
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            typed = (type(key), key)  # 1 and true are different keys, though 1 == True in Python
            repeated = typed in seen
            seen.add(typed)
        except TypeError:  # an unhashable key: the constructor below reports it
            break
        if repeated:
            raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} appears twice", key_node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def read_yaml(path: str | Path, what: str, error: type[KetamineResponseError] = CohortFileError) -> Any:
    """The parsed content of the YAML file at *path* (None when empty).

    *what* names the file's role in messages ("config file", "mapping file"); *error* is the
    class raised for a missing, unreadable, oversized, non-UTF-8 or malformed file.
    """
    path = Path(path)
    try:
        if not path.is_file():
            raise error(f"{path}: the {what} does not exist{' (it is a folder)' if path.is_dir() else ''}. Check its path.")
        if path.stat().st_size > MAX_BYTES:
            raise error(f"{path}: the {what} is over {MAX_BYTES // 1000} kB; it cannot be one of ours.")
        text = path.read_text(encoding="utf-8")
        return yaml.load(text, Loader=_StrictLoader)
    except OSError as exc:
        raise error(f"{path}: the {what} cannot be read ({exc.strerror or exc}).") from None
    except UnicodeDecodeError:
        raise error(f"{path}: the {what} is not UTF-8 text. Save it as UTF-8.") from None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, AttributeError) as exc:
        # PyYAML's constructors raise plain ValueError/TypeError/AttributeError for values such as
        # 'seed: 2024-13-45' or '!!int x'
        raise error(f"{path}: the {what} is not valid YAML ({str(exc).strip() or type(exc).__name__}).") from None
