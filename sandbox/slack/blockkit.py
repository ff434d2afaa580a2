"""Block Kit basics as Slack checks them on chat.postMessage / chat.update.

``validate_blocks`` returns Slack's error strings (``"<problem> [json-pointer:/blocks/0/...]"``);
an empty list means the blocks are accepted. It covers the documented message limits: at most 50
blocks, known block types, text objects (``plain_text``/``mrkdwn``, non-empty, per-field maximum
lengths: section text 3000, section field 2000, header 150, markdown block 12000), section
``text``/``fields`` (at most 10), context elements (1..10), actions elements (1..25, buttons'
text/action_id/value/url lengths), image ``alt_text``, ``block_id`` length and uniqueness.
Interactive elements other than buttons are only checked for a ``type``.
"""

from __future__ import annotations

from typing import Any

MAX_BLOCKS = 50
BLOCK_TYPES = frozenset(
    {
        "actions",
        "call",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)
TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})


def validate_blocks(blocks: list[Any]) -> list[str]:
    errors: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    seen_ids: set[str] = set()
    for i, block in enumerate(blocks):
        _Checker(errors, f"/blocks/{i}").block(block, seen_ids)
    return errors


class _Checker:
    def __init__(self, errors: list[str], pointer: str) -> None:
        self.errors = errors
        self.pointer = pointer

    def fail(self, message: str, suffix: str = "") -> None:
        self.errors.append(f"{message} [json-pointer:{self.pointer}{suffix}]")

    def block(self, block: Any, seen_ids: set[str]) -> None:
        if not isinstance(block, dict):
            self.fail("must provide an object")
            return
        kind = block.get("type")
        if not isinstance(kind, str) or not kind:
            self.fail("missing required field: type")
            return
        if kind not in BLOCK_TYPES:
            self.fail(f"unsupported type: {kind}", "/type")
            return
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not 0 < len(block_id) <= 255:
                self.fail("must be less than 256 characters", "/block_id")
            elif block_id in seen_ids:
                self.fail(f"duplicate block_id: {block_id}", "/block_id")
            else:
                seen_ids.add(block_id)
        check = getattr(self, f"_{kind}", None)
        if check is not None:
            check(block)

    # ---- composition objects -----------------------------------------------------------------
    def text(self, obj: Any, suffix: str, max_len: int, types: frozenset[str] = TEXT_TYPES) -> None:
        if not isinstance(obj, dict):
            self.fail("must provide an object", suffix)
            return
        if obj.get("type") not in types:
            self.fail("failed to match all allowed schemas", suffix)
            self.fail("must be a valid enum value", f"{suffix}/type")
            return
        text = obj.get("text")
        if not isinstance(text, str):
            self.fail("missing required field: text", suffix)
        elif not text:
            self.fail("failed to match all allowed schemas", suffix)
            self.fail("must be more than 0 characters", f"{suffix}/text")
        elif len(text) > max_len:
            self.fail("failed to match all allowed schemas", suffix)
            self.fail(f"must be less than {max_len + 1} characters", f"{suffix}/text")

    def items(self, value: Any, suffix: str, low: int, high: int) -> list[Any]:
        if not isinstance(value, list):
            self.fail(f"missing required field: {suffix.rsplit('/', 1)[-1]}")
            return []
        if len(value) < low:
            self.fail(f"must provide at least {low} items", suffix)
        if len(value) > high:
            self.fail(f"no more than {high} items allowed", suffix)
        return value

    def element(self, element: Any, suffix: str) -> None:
        if not isinstance(element, dict) or not isinstance(element.get("type"), str):
            self.fail("missing required field: type", suffix)
            return
        if element["type"] == "button":
            self.text(element.get("text"), f"{suffix}/text", 75, frozenset({"plain_text"}))
            for key, limit in (("action_id", 255), ("value", 2000), ("url", 3000)):
                value = element.get(key)
                if value is not None and (not isinstance(value, str) or len(value) > limit):
                    self.fail(f"must be less than {limit + 1} characters", f"{suffix}/{key}")
            style = element.get("style")
            if style is not None and style not in ("primary", "danger"):
                self.fail("must be a valid enum value", f"{suffix}/style")

    # ---- block types -------------------------------------------------------------------------
    def _section(self, block: dict[str, Any]) -> None:
        if "text" not in block and "fields" not in block:
            self.fail("must define either `text` or `fields`")
        if "text" in block:
            self.text(block["text"], "/text", 3000)
        if "fields" in block:
            for n, field in enumerate(self.items(block["fields"], "/fields", 1, 10)):
                self.text(field, f"/fields/{n}", 2000)
        if "accessory" in block:
            self.element(block["accessory"], "/accessory")

    def _header(self, block: dict[str, Any]) -> None:
        self.text(block.get("text"), "/text", 150, frozenset({"plain_text"}))

    def _markdown(self, block: dict[str, Any]) -> None:
        text = block.get("text")
        if not isinstance(text, str):
            self.fail("missing required field: text")
        elif not 0 < len(text) <= 12000:
            self.fail("must be less than 12001 characters", "/text")

    def _context(self, block: dict[str, Any]) -> None:
        for n, element in enumerate(self.items(block.get("elements"), "/elements", 1, 10)):
            if isinstance(element, dict) and element.get("type") == "image":
                continue
            self.text(element, f"/elements/{n}", 3000)

    def _actions(self, block: dict[str, Any]) -> None:
        for n, element in enumerate(self.items(block.get("elements"), "/elements", 1, 25)):
            self.element(element, f"/elements/{n}")

    def _image(self, block: dict[str, Any]) -> None:
        if "image_url" not in block and "slack_file" not in block:
            self.fail("must define either `image_url` or `slack_file`")
        url = block.get("image_url")
        if url is not None and (not isinstance(url, str) or len(url) > 3000):
            self.fail("must be less than 3001 characters", "/image_url")
        alt = block.get("alt_text")
        if not isinstance(alt, str) or not alt:
            self.fail("missing required field: alt_text")
        elif len(alt) > 2000:
            self.fail("must be less than 2001 characters", "/alt_text")
        if "title" in block:
            self.text(block["title"], "/title", 2000, frozenset({"plain_text"}))

    def _rich_text(self, block: dict[str, Any]) -> None:
        if not isinstance(block.get("elements"), list):
            self.fail("missing required field: elements")

    def _input(self, block: dict[str, Any]) -> None:
        self.text(block.get("label"), "/label", 2000, frozenset({"plain_text"}))
        self.element(block.get("element"), "/element")
