"""The Anthropic Messages API, translated to and from Chat Completions at the edge.

`POST /v1/messages` (Claude Code, the anthropic SDKs) runs the same chat path as
`/v1/chat/completions`: this module turns a Messages request into a chat body (`to_chat`), a
finished chat completion into a Message (`message_object`), a chat stream into Anthropic's
event sequence (`MessagesStream`), and an error into Anthropic's error shape
(`anthropic_error_body`). Every function is pure.

What maps to what:

- `system` (a string or text blocks) and `role: "system"` entries inside `messages` (Claude
  Code sends them) become one leading system message.
- `text` blocks become text, `image` blocks (base64 or URL) `image_url` parts, an assistant's
  `tool_use` blocks its `tool_calls`, a user's `tool_result` blocks `tool` messages (placed
  first, right after the call they answer); `thinking` blocks are not replayed.
- `tools` become function tools (`input_schema` is the parameters' schema); a server-side
  `web_search_*` tool asks for live data (ENRICH, as in the Responses API); other server tools
  (bash, text editor, …) are Claude-only and dropped.
- `tool_choice` auto/any/tool/none becomes auto/required/function/none
  (`disable_parallel_tool_use` becomes `parallel_tool_calls: false`); `max_tokens`,
  `temperature`, `top_p` pass through, `stop_sequences` becomes `stop`, `output_config.format`
  `response_format`. `top_k` and `thinking` are accepted and not forwarded (not every backend
  takes them; each reasons as it is configured), nor is `metadata` (Claude Code puts its device
  and session ids there: they are not the backends' business).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from core.backends.assemble import StreamAssembler
from core.http.errors import OpenAIError, anthropic_error_body

ENRICH = "ENRICH"

def new_id(prefix: str) -> str:
    """A fresh id in Anthropic's style: `msg_…`, `toolu_…`."""
    return f"{prefix}_{secrets.token_hex(12)}"


class MessageParam(BaseModel):
    """One entry of `messages`."""

    model_config = ConfigDict(extra="allow")

    role: Literal["user", "assistant", "system"]
    content: str | list[dict[str, Any]]

    @field_validator("content", mode="before")
    @classmethod
    def _content_shape(cls, value: Any) -> Any:
        if not isinstance(value, str | list):
            raise ValueError("must be a string or a list of content blocks")  # not pydantic's per-type errors
        return value


class CountTokensRequest(BaseModel):
    """`POST /v1/messages/count_tokens`: what a Messages request counts (no `max_tokens`)."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[MessageParam] = Field(..., min_length=1)
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None

    @field_validator("system", mode="before")
    @classmethod
    def _system_shape(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str | list):
            raise ValueError("must be a string or a list of text blocks")
        return value


class MessagesRequest(CountTokensRequest):
    """`POST /v1/messages`: the fields the router reads, with their types checked."""

    max_tokens: int = Field(..., ge=1)
    tool_choice: dict[str, Any] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    metadata: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None
    output_config: dict[str, Any] | None = None
    stream: StrictBool = False


@dataclass
class ChatTranslation:
    """A Messages request as the chat path takes it."""

    chat: dict[str, Any]
    """The Chat Completions body."""
    forced_route: str | None
    """ENRICH when the client offered only web search, or chose it, else None."""


def _bad(message: str, param: str) -> OpenAIError:
    return OpenAIError(400, f"{param}: {message}", param=param)


def _system_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for j, block in enumerate(content or ()):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise _bad("system content takes text blocks only", f"{where}.{j}")
        texts.append(block["text"])
    return "\n".join(texts)


def _image_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise _bad("an image block needs a 'source'", f"{where}.source")
    if source.get("type") == "base64":
        media, data = source.get("media_type"), source.get("data")
        if not isinstance(media, str) or not isinstance(data, str):
            raise _bad("a base64 image source needs 'media_type' and 'data'", f"{where}.source")
        return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{data}"}}
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    raise _bad("image source type must be base64 or url", f"{where}.source.type")


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Chat content: a plain string when every part is text (every chat template takes it)."""
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def _tool_result_text(block: dict[str, Any], where: str) -> tuple[str, list[dict[str, Any]]]:
    """A tool_result's text, and the images it carried (sent after it as a user turn)."""
    content = block.get("content")
    images: list[dict[str, Any]] = []
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    elif isinstance(content, list):
        texts = []
        for j, inner in enumerate(content):
            kind = inner.get("type") if isinstance(inner, dict) else None
            if kind == "text" and isinstance(inner.get("text"), str):
                texts.append(inner["text"])
            elif kind == "image":
                images.append(_image_part(inner, f"{where}.content.{j}"))
            elif kind == "tool_reference" and isinstance(inner.get("tool_name"), str):
                texts.append(f"[tool available: {inner['tool_name']}]")  # Claude Code's tool search result
            elif isinstance(kind, str):
                texts.append(orjson.dumps(inner).decode())  # a block only Claude reads: its JSON, as text
            else:
                raise _bad("each tool_result content block needs a 'type'", f"{where}.content.{j}.type")
        text = "\n".join(texts)
    else:
        raise _bad("tool_result content must be a string or a list of blocks", f"{where}.content")
    if block.get("is_error"):
        text = f"Error: {text}"
    return text, images


def _blocks(content: list[Any], where: str) -> Iterator[tuple[str, str | None, Any]]:
    """Each content block with where it stands (`messages.0.content.1`) and its type (None: not a block)."""
    for j, block in enumerate(content):
        yield f"{where}.{j}", block.get("type") if isinstance(block, dict) else None, block


def _text(block: dict[str, Any], at: str) -> str:
    """A text block's text (400 when it is not a string)."""
    if not isinstance(block.get("text"), str):
        raise _bad("a text block needs a string 'text'", f"{at}.text")
    text: str = block["text"]
    return text


def _user_messages(content: Any, where: str) -> list[dict[str, Any]]:
    """A user turn: its tool results first (as `tool` messages), then what the person wrote."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for at, kind, block in _blocks(content, where):
        if kind == "text":
            parts.append({"type": "text", "text": _text(block, at)})
        elif kind == "image":
            parts.append(_image_part(block, at))
        elif kind == "tool_result":
            if not isinstance(block.get("tool_use_id"), str):
                raise _bad("a tool_result block needs a string 'tool_use_id'", f"{at}.tool_use_id")
            text, images = _tool_result_text(block, at)
            tools.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": text})
            parts.extend(images)
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise _bad(f"content block type {kind!r} is not supported in a user message "
                       "(text, image, tool_result)", f"{at}.type")
    return tools + ([{"role": "user", "content": _content(parts)}] if parts else [])


def _assistant_message(content: Any, where: str) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for at, kind, block in _blocks(content, where):
        if kind == "text":
            texts.append(_text(block, at))
        elif kind in ("tool_use", "server_tool_use"):
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise _bad("a tool_use block needs string 'id' and 'name'", at)
            arguments = orjson.dumps(block.get("input") if block.get("input") is not None else {}).decode()
            calls.append({"id": block["id"], "type": "function",
                          "function": {"name": block["name"], "arguments": arguments}})
        elif kind in ("thinking", "redacted_thinking", "web_search_tool_result"):
            continue  # the backend reasons afresh; a server tool's result is not replayed
        else:
            raise _bad(f"content block type {kind!r} is not supported in an assistant message "
                       "(text, tool_use, thinking)", f"{at}.type")
    message: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tools(tools: list[dict[str, Any]] | None) -> tuple[list[dict[str, Any]], bool]:
    out: list[dict[str, Any]] = []
    web_search = False
    for i, tool in enumerate(tools or ()):
        at = f"tools.{i}"
        if not isinstance(tool, dict):
            raise _bad("each tool must be an object", at)
        kind = tool.get("type")
        if kind in (None, "custom"):
            if not isinstance(tool.get("name"), str) or not tool["name"]:
                raise _bad("a tool needs a 'name'", f"{at}.name")
            schema = tool.get("input_schema")
            if not isinstance(schema, dict):
                raise _bad("a tool needs an 'input_schema' object", f"{at}.input_schema")
            function: dict[str, Any] = {"name": tool["name"], "parameters": schema}
            if isinstance(tool.get("description"), str):
                function["description"] = tool["description"]
            out.append({"type": "function", "function": function})
        elif isinstance(kind, str) and kind.startswith("web_search"):
            web_search = True
        # other server tools (bash_*, text_editor_*, computer_*, code_execution_*) run only
        # on Anthropic's side: left out, as a model that does not know them would.
    return out, web_search


def _tool_choice(choice: dict[str, Any] | None, chat: dict[str, Any]) -> bool:
    """Put the chat `tool_choice` into `chat`; True when the choice names web search."""
    if choice is None:
        return False
    kind = choice.get("type")
    if choice.get("disable_parallel_tool_use") is True and "tools" in chat:
        chat["parallel_tool_calls"] = False
    if kind == "tool" and isinstance(choice.get("name"), str):
        if choice["name"].startswith("web_search") and not any(
                t["function"]["name"] == choice["name"] for t in chat.get("tools") or ()):
            return True
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    elif kind in ("auto", "any", "none"):
        chat["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
    else:
        raise _bad("tool_choice.type must be auto, any, tool or none", "tool_choice.type")
    if "tools" not in chat:
        chat.pop("tool_choice", None)
    return False


def _output_format(config: dict[str, Any] | None) -> dict[str, Any] | None:
    fmt = (config or {}).get("format")
    if fmt is None:
        return None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        return {"type": "json_schema", "json_schema": {"name": str(fmt.get("name") or "output"),
                                                       "schema": fmt["schema"]}}
    raise _bad("output_config.format must be {\"type\": \"json_schema\", \"schema\": {…}}", "output_config.format")


def messages_to_chat(system: Any, messages: list[MessageParam]) -> list[dict[str, Any]]:
    """`system` and `messages` as chat messages, every system text in one leading message."""
    system_texts = [_system_text(system, "system")] if system else []
    chat: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages.{i}.content"
        if message.role == "system":
            system_texts.append(_system_text(message.content, where))
        elif message.role == "user":
            chat.extend(_user_messages(message.content, where))
        else:
            chat.append(_assistant_message(message.content, where))
    texts = [t for t in system_texts if t]
    return ([{"role": "system", "content": "\n\n".join(texts)}] if texts else []) + chat


def to_chat(request: MessagesRequest) -> ChatTranslation:
    """Translate a validated Messages request into a chat body.

    Raises:
        OpenAIError: 400 for a block, tool or format the router cannot translate (the edge
            renders it in Anthropic's shape).
    """
    messages = messages_to_chat(request.system, request.messages)
    if not any(m["role"] != "system" for m in messages):
        raise _bad("there is no user or assistant message to answer", "messages")
    chat: dict[str, Any] = {"model": request.model, "messages": messages, "stream": request.stream,
                            "max_tokens": request.max_tokens}
    tools, web_search = _tools(request.tools)
    if tools:
        chat["tools"] = tools
    choice_searches = _tool_choice(request.tool_choice, chat)
    if request.stop_sequences:
        chat["stop"] = request.stop_sequences
    for key in ("temperature", "top_p"):
        if getattr(request, key) is not None:
            chat[key] = getattr(request, key)
    fmt = _output_format(request.output_config)
    if fmt is not None:
        chat["response_format"] = fmt
    forced = ENRICH if choice_searches or (web_search and not tools) else None
    return ChatTranslation(chat, forced)


def estimate_tokens(request: CountTokensRequest) -> int:
    """An estimate of the request's input tokens: about 4 characters of its chat form per token.

    The router cannot know every backend's tokenizer; this errs on neither side by much for
    English text and code (and counts the tools' schemas, which clients budget for).
    """
    messages = messages_to_chat(request.system, request.messages)
    size = len(orjson.dumps(messages)) + len(orjson.dumps(request.tools or []))
    return max(1, size // 4)


# --- chat answer -> Message -------------------------------------------------------------------

def stop_reason(finish_reason: str | None, stop_sequences: list[str] | None,
                matched: Any = None) -> tuple[str, str | None]:
    """Chat `finish_reason` as (Anthropic `stop_reason`, `stop_sequence`).

    vLLM names the stop string that ended the answer (`stop_reason`); other backends do not,
    and then a stop is reported as `end_turn`.
    """
    if finish_reason == "length":
        return "max_tokens", None
    if finish_reason in ("tool_calls", "function_call"):
        return "tool_use", None
    if isinstance(matched, str) and matched in (stop_sequences or ()):
        return "stop_sequence", matched
    return "end_turn", None


def usage_of(chat_usage: dict[str, Any] | None) -> dict[str, Any]:
    """Chat usage as Anthropic usage."""
    chat_usage = chat_usage or {}
    cached = (chat_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return {"input_tokens": int(chat_usage.get("prompt_tokens") or 0) - cached,
            "output_tokens": int(chat_usage.get("completion_tokens") or 0),
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached}


def _tool_input(arguments: str) -> dict[str, Any]:
    """A call's JSON arguments as the `input` object (non-JSON text is kept under `arguments`)."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}


def message_object(chat: dict[str, Any], message_id: str, model: str,
                   stop_sequences: list[str] | None = None) -> dict[str, Any]:
    """A finished chat completion as an Anthropic Message."""
    choice = (chat.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id") or new_id("toolu"),
                        "name": function.get("name") or "", "input": _tool_input(function.get("arguments") or "")})
    reason, sequence = stop_reason(choice.get("finish_reason"), stop_sequences, choice.get("stop_reason"))
    return {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": reason, "stop_sequence": sequence, "usage": usage_of(chat.get("usage"))}


# --- chat stream -> Messages events --------------------------------------------------------------

class MessagesStream:
    """Turn chat completion chunks into Anthropic's streaming events.

    `start()` gives `message_start` and a `ping`; `feed(chunk)` the events a chunk adds, one
    content block at a time (`thinking`, `text`, `tool_use`), each opened by
    `content_block_start` and closed by `content_block_stop` when another begins;
    `end(error)` closes the open block and ends with `message_delta` (stop reason, usage)
    and `message_stop`, or with an `error` event when the stream failed midway.
    """

    def __init__(self, message_id: str, model: str, stop_sequences: list[str] | None = None) -> None:
        """Stream the message `message_id`, naming `model` as the client asked."""
        self.message_id = message_id
        self.model = model
        self.stop_sequences = stop_sequences
        self.assembler = StreamAssembler()
        self.blocks = 0
        self._open: tuple[str, int | None] | None = None  # ("text"|"thinking"|"tool_use", tool index)
        self._matched: Any = None

    def start(self) -> list[dict[str, Any]]:
        """The opening events."""
        message: dict[str, Any] = {"id": self.message_id, "type": "message", "role": "assistant", "model": self.model,
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                             "cache_read_input_tokens": 0}}
        return [{"type": "message_start", "message": message}, {"type": "ping"}]

    def _close(self) -> list[dict[str, Any]]:
        if self._open is None:
            return []
        self._open = None
        self.blocks += 1
        return [{"type": "content_block_stop", "index": self.blocks - 1}]

    def _switch(self, kind: str, tool: int | None, block: dict[str, Any]) -> list[dict[str, Any]]:
        if self._open == (kind, tool):
            return []
        events = self._close()
        self._open = (kind, tool)
        events.append({"type": "content_block_start", "index": self.blocks, "content_block": block})
        return events

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The events one chat chunk adds."""
        self.assembler.add(chunk)
        events: list[dict[str, Any]] = []
        for choice in chunk.get("choices") or ():
            if choice.get("stop_reason") is not None:
                self._matched = choice["stop_reason"]
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                events += self._switch("thinking", None, {"type": "thinking", "thinking": "", "signature": ""})
                events.append({"type": "content_block_delta", "index": self.blocks,
                               "delta": {"type": "thinking_delta", "thinking": reasoning}})
            if delta.get("content"):
                events += self._switch("text", None, {"type": "text", "text": ""})
                events.append({"type": "content_block_delta", "index": self.blocks,
                               "delta": {"type": "text_delta", "text": delta["content"]}})
            for fragment in delta.get("tool_calls") or ():
                position = fragment.get("index", 0)
                function = fragment.get("function") or {}
                if self._open != ("tool_use", position):
                    slot = self.assembler.tool_calls.get(position) or {}
                    events += self._switch("tool_use", position, {
                        "type": "tool_use", "id": slot.get("id") or new_id("toolu"),
                        "name": (slot.get("function") or {}).get("name") or function.get("name") or "",
                        "input": {}})
                if function.get("arguments"):
                    events.append({"type": "content_block_delta", "index": self.blocks,
                                   "delta": {"type": "input_json_delta", "partial_json": function["arguments"]}})
        return events

    def end(self, error: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Close the open block and end the message, or report `error` (`{"status", "message"}`)."""
        events = self._close()
        if error is not None:
            body = anthropic_error_body(int(error.get("status") or 500), str(error.get("message") or "stream failed"))
            return events + [{"type": "error", "error": body["error"]}]
        reason, sequence = stop_reason(self.assembler.finish_reason, self.stop_sequences, self._matched)
        usage = usage_of(self.assembler.usage)
        return events + [
            {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": sequence},
             "usage": {"input_tokens": usage["input_tokens"], "output_tokens": usage["output_tokens"],
                       "cache_creation_input_tokens": 0, "cache_read_input_tokens": usage["cache_read_input_tokens"]}},
            {"type": "message_stop"},
        ]


def sse(event: dict[str, Any]) -> bytes:
    """One event in SSE framing, as Anthropic frames it (`event: <type>` + `data: <json>`)."""
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
