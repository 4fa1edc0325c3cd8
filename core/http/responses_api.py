"""The OpenAI Responses API, translated to and from Chat Completions at the edge.

`POST /v1/responses` runs the same chat path as `/v1/chat/completions`: this module turns a
Responses request into a chat body (`to_chat`), a finished chat completion into a Responses
object (`response_object`), and a chat stream into the Responses event sequence
(`ResponsesStream`). The backends, the graph and the nodes only ever see Chat Completions.

Every function here is pure (no I/O): the edge hands in the request, the stored conversation
of `previous_response_id` and the ids, and gets back plain dicts.

What maps to what:

- `input` (a string, or items: messages with `input_text` / `input_image` / `output_text`
  parts, `function_call`, `function_call_output`, `custom_tool_call(_output)`, `reasoning`)
  becomes chat messages; `instructions`, `system` and `developer` messages become one leading
  system message (chat templates of local models accept a system message only first).
- Function tools pass through; `namespace` tools are flattened to `namespace__name`, and
  `custom` (free-form) tools become functions of one string `input`; calls are mapped back.
- A built-in `web_search` tool asks for live data: when it is the only tool, or `tool_choice`
  names it, the request is forced onto ENRICH; offered beside function tools (as Codex always
  does) it is a hint the classifier already covers. Other built-in tools cannot run on the
  router's backends and are dropped.
- `text.format` becomes `response_format`; `max_output_tokens` becomes `max_tokens`;
  `temperature`, `top_p`, `parallel_tool_calls`, `user` pass through; `reasoning`,
  `metadata`, `store` and `previous_response_id` are the router's (echoed, not forwarded:
  grok-4 refuses `reasoning_effort`, and each backend reasons as it is configured).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from core.backends.assemble import StreamAssembler
from core.http.errors import OpenAIError

ENRICH = "ENRICH"
WEB_SEARCH_TOOLS = frozenset({"web_search", "web_search_preview", "web_search_2025_08_26",
                              "web_search_preview_2025_03_11"})
_NAMESPACE_JOIN = "__"


def new_id(prefix: str) -> str:
    """A fresh id in OpenAI's style: `resp_…`, `msg_…`, `fc_…`, `rs_…`."""
    return f"{prefix}_{secrets.token_hex(24)}"


class ResponsesRequest(BaseModel):
    """`POST /v1/responses`: the fields the router reads, with their types checked.

    Fields it does not know are accepted and ignored (clients send many: `include`,
    `prompt_cache_key`, `service_tier`, …).
    """

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    input: str | list[dict[str, Any]] = Field(..., description="The turn's input: text or items.")
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: StrictBool | None = None
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    metadata: dict[str, str] | None = None
    user: str | None = None
    store: StrictBool | None = None
    previous_response_id: str | None = None
    stream: StrictBool = False

    @field_validator("input", mode="before")
    @classmethod
    def _input_shape(cls, value: Any) -> Any:
        if not isinstance(value, str | list):
            raise ValueError("must be a string or a list of input items")  # not pydantic's per-type errors
        return value

    @field_validator("tool_choice", mode="before")
    @classmethod
    def _choice_shape(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str | dict):
            raise ValueError("must be a string (auto, none, required) or an object")
        return value


@dataclass
class ToolMap:
    """How the request's tools were named towards the backend, to name the calls back."""

    namespaces: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Chat function name -> (namespace, name) for tools inside a `namespace` tool."""
    custom: set[str] = field(default_factory=set)
    """Chat function names that stand for `custom` (free-form input) tools."""

    def chat_name(self, name: str, namespace: str | None) -> str:
        """The chat function name of `name` in `namespace`."""
        return f"{namespace}{_NAMESPACE_JOIN}{name}" if namespace else name

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (kept with a stored response)."""
        return {"namespaces": {k: list(v) for k, v in self.namespaces.items()}, "custom": sorted(self.custom)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ToolMap:
        """The inverse of `to_dict`."""
        data = data or {}
        return cls({k: (v[0], v[1]) for k, v in (data.get("namespaces") or {}).items()}, set(data.get("custom") or ()))


@dataclass
class ChatTranslation:
    """A Responses request as the chat path takes it."""

    chat: dict[str, Any]
    """The Chat Completions body."""
    input_items: list[dict[str, Any]]
    """This turn's input as Responses items (what a stored response keeps)."""
    forced_route: str | None
    """ENRICH when the client asked for web search outright, else None."""
    tools: ToolMap


def _bad(message: str, param: str) -> OpenAIError:
    return OpenAIError(400, f"Invalid request: {param}: {message}", param=param)


def input_items(value: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`input` as a list of items (a string is one user message)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    return [dict(item) for item in value]


def _text_of_parts(content: Any, where: str) -> str:
    """The text of a string or of a list of text parts (for system/developer content)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad("content must be a string or a list of parts", where)
    texts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            raise _bad("a system or developer message takes text parts only", f"{where}.{j}")
        texts.append(part["text"])
    return "\n".join(texts)


def _chat_parts(content: Any, where: str) -> str | list[dict[str, Any]]:
    """Responses content (a string or parts) as chat content."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad("content must be a string or a list of parts", where)
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text", "summary_text"):
            if not isinstance(part.get("text"), str):
                raise _bad("a text part needs a string 'text'", f"{where}.{j}.text")
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "refusal":
            parts.append({"type": "text", "text": str(part.get("refusal") or "")})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                raise _bad("an input_image part needs an 'image_url' (a URL or a data: URL); "
                           "file_id images are not supported by the router", f"{where}.{j}.image_url")
            image: dict[str, Any] = {"url": url}
            if part.get("detail") in ("low", "high", "auto"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise _bad(f"content part type {kind!r} is not supported (supported: input_text, input_image, "
                       "output_text, refusal)", f"{where}.{j}.type")
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)  # plain text: every chat template takes it
    return parts


def _tool_output(output: Any, where: str) -> str:
    """A function call's output as the text of a chat `tool` message."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "\n".join(p.get("text", "") for p in output if isinstance(p, dict) and isinstance(p.get("text"), str))
    raise _bad("output must be a string or a list of parts", where)


def items_to_messages(items: list[dict[str, Any]], tools: ToolMap, where: str = "input") -> tuple[
        list[str], list[dict[str, Any]]]:
    """Responses items as (system texts, chat messages), function calls joined to their assistant turn."""
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        at = f"{where}.{i}"
        if not isinstance(item, dict):
            raise _bad("each input item must be an object", at)
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role in ("system", "developer"):
                system.append(_text_of_parts(item.get("content"), f"{at}.content"))
            elif role in ("user", "assistant"):
                messages.append({"role": role, "content": _chat_parts(item.get("content"), f"{at}.content")})
            else:
                raise _bad(f"role {role!r} is not one of user, assistant, system, developer", f"{at}.role")
        elif kind in ("function_call", "custom_tool_call"):
            call_id, name = item.get("call_id"), item.get("name")
            if not isinstance(call_id, str) or not isinstance(name, str):
                raise _bad(f"a {kind} item needs string 'call_id' and 'name'", at)
            if kind == "function_call":
                arguments = item.get("arguments")
                if not isinstance(arguments, str):
                    raise _bad("'arguments' must be a JSON string", f"{at}.arguments")
            else:
                arguments = orjson.dumps({"input": str(item.get("input") or "")}).decode()
            call = {"id": call_id, "type": "function",
                    "function": {"name": tools.chat_name(name, item.get("namespace")), "arguments": arguments}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and isinstance(last.get("content"), str | None):
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = item.get("call_id")
            if not isinstance(call_id, str):
                raise _bad(f"a {kind} item needs a string 'call_id'", at)
            messages.append({"role": "tool", "tool_call_id": call_id,
                             "content": _tool_output(item.get("output"), f"{at}.output")})
        elif kind in ("reasoning", "item_reference", "web_search_call"):
            continue  # the backend reasons afresh; references and searches carry no text to replay
        else:
            raise _bad(f"input item type {kind!r} is not supported (supported: message, function_call, "
                       "function_call_output, custom_tool_call, custom_tool_call_output, reasoning)", f"{at}.type")
    return system, messages


def _function_tool(tool: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    parameters = tool.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise _bad("'parameters' must be a JSON Schema object", f"{where}.parameters")
    function["parameters"] = parameters or {"type": "object", "properties": {}}
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _custom_tool(name: str, description: Any) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "description": str(description or "") + " (free-form: put the whole input in `input`)",
        "parameters": {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}}}


def translate_tools(tools: list[dict[str, Any]] | None) -> tuple[list[dict[str, Any]], ToolMap, bool]:
    """Responses tools as (chat tools, their name map, whether web search was offered)."""
    out: list[dict[str, Any]] = []
    names = ToolMap()
    web_search = False
    for i, tool in enumerate(tools or ()):
        at = f"tools.{i}"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            if not isinstance(tool.get("name"), str) or not tool["name"]:
                raise _bad("a function tool needs a 'name'", f"{at}.name")
            out.append(_function_tool(tool, tool["name"], at))
        elif kind == "custom":
            if not isinstance(tool.get("name"), str):
                raise _bad("a custom tool needs a 'name'", f"{at}.name")
            out.append(_custom_tool(tool["name"], tool.get("description")))
            names.custom.add(tool["name"])
        elif kind == "namespace":
            namespace = tool.get("name")
            if not isinstance(namespace, str) or not isinstance(tool.get("tools"), list):
                raise _bad("a namespace tool needs a 'name' and a list of 'tools'", at)
            for j, inner in enumerate(tool["tools"]):
                inner_name = inner.get("name") if isinstance(inner, dict) else None
                if not isinstance(inner_name, str):
                    raise _bad("each tool needs a 'name'", f"{at}.tools.{j}.name")
                chat_name = names.chat_name(inner_name, namespace)
                names.namespaces[chat_name] = (namespace, inner_name)
                if inner.get("type") == "custom":
                    out.append(_custom_tool(chat_name, inner.get("description")))
                    names.custom.add(chat_name)
                else:
                    out.append(_function_tool(inner, chat_name, f"{at}.tools.{j}"))
        elif kind in WEB_SEARCH_TOOLS:
            web_search = True
        elif not isinstance(kind, str):
            raise _bad("each tool needs a 'type'", f"{at}.type")
        # other built-in tools (file_search, computer_use, code_interpreter, …) cannot run on
        # the router's backends: they are left out, as a model that does not know them would.
    return out, names, web_search


def _tool_choice(choice: Any, tools: ToolMap) -> tuple[Any, bool]:
    """Responses `tool_choice` as (chat tool_choice or None, whether it names web search)."""
    if choice is None:
        return None, False
    if choice in ("auto", "none", "required"):
        return choice, False
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind in WEB_SEARCH_TOOLS:
            return None, True
        if kind in ("function", "custom") and isinstance(choice.get("name"), str):
            return {"type": "function", "function": {"name": tools.chat_name(choice["name"],
                                                                               choice.get("namespace"))}}, False
        if kind == "allowed_tools":
            return ("required" if choice.get("mode") == "required" else "auto"), False
    raise _bad("tool_choice must be auto, none, required, or a function/custom/web_search choice", "tool_choice")


def _response_format(text: dict[str, Any] | None) -> dict[str, Any] | None:
    fmt = (text or {}).get("format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        if not isinstance(fmt.get("schema"), dict):
            raise _bad("a json_schema format needs a 'schema' object", "text.format.schema")
        schema: dict[str, Any] = {"name": str(fmt.get("name") or "output"), "schema": fmt["schema"]}
        for key in ("strict", "description"):
            if fmt.get(key) is not None:
                schema[key] = fmt[key]
        return {"type": "json_schema", "json_schema": schema}
    raise _bad("text.format.type must be text, json_object or json_schema", "text.format.type")


def to_chat(request: ResponsesRequest, history: list[dict[str, Any]] | None = None) -> ChatTranslation:
    """Translate a validated Responses request (plus the earlier turns' items) into a chat body.

    `history` is the stored conversation of `previous_response_id` (its input and output
    items, oldest first), replayed before this turn's input.

    Raises:
        OpenAIError: 400 for an item, part, tool or format the router cannot translate.
    """
    tools, names, web_search = translate_tools(request.tools)
    choice, choice_searches = _tool_choice(request.tool_choice, names)
    items = input_items(request.input)
    earlier_system, earlier = items_to_messages(history or [], names, "previous_response_id")
    system, messages = items_to_messages(items, names)
    system_texts = [t for t in (request.instructions, *earlier_system, *system) if t]
    chat_messages = ([{"role": "system", "content": "\n\n".join(system_texts)}] if system_texts else [])
    chat_messages += earlier + messages
    if not any(m["role"] != "system" for m in chat_messages):
        raise _bad("the input has no user, assistant or tool item to answer", "input")
    chat: dict[str, Any] = {"model": request.model, "messages": chat_messages, "stream": request.stream}
    if tools:
        chat["tools"] = tools
        if choice is not None:
            chat["tool_choice"] = choice
        if request.parallel_tool_calls is not None:
            chat["parallel_tool_calls"] = request.parallel_tool_calls
    fmt = _response_format(request.text)
    if fmt is not None:
        chat["response_format"] = fmt
    if request.max_output_tokens is not None:
        chat["max_tokens"] = request.max_output_tokens
    for key in ("temperature", "top_p", "user"):
        if getattr(request, key) is not None:
            chat[key] = getattr(request, key)
    forced = ENRICH if choice_searches or (web_search and not tools) else None
    return ChatTranslation(chat, items, forced, names)


# --- chat answer -> Responses object -------------------------------------------------------------

def usage_of(chat_usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """Chat usage as Responses usage."""
    if not chat_usage:
        return None
    prompt = int(chat_usage.get("prompt_tokens") or 0)
    completion = int(chat_usage.get("completion_tokens") or 0)
    cached = ((chat_usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0
    reasoning = ((chat_usage.get("completion_tokens_details") or {}).get("reasoning_tokens")) or 0
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": int(chat_usage.get("total_tokens") or prompt + completion)}


def envelope(request: ResponsesRequest, response_id: str, created_at: int, model: str) -> dict[str, Any]:
    """The fields of a Responses object that echo the request (status and output come later)."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "model": model,
        "output": [],
        "parallel_tool_calls": True if request.parallel_tool_calls is None else request.parallel_tool_calls,
        "previous_response_id": request.previous_response_id,
        "reasoning": request.reasoning or {"effort": None, "summary": None},
        "store": True if request.store is None else request.store,
        "temperature": request.temperature,
        "text": request.text or {"format": {"type": "text"}},
        "tool_choice": request.tool_choice or "auto",
        "tools": request.tools or [],
        "top_p": request.top_p,
        "truncation": "disabled",
        "usage": None,
        "user": request.user,
        "metadata": request.metadata or {},
    }


def reasoning_item(text: str, item_id: str | None = None, status: str = "completed") -> dict[str, Any]:
    """A `reasoning` output item carrying the backend's reasoning text."""
    return {"type": "reasoning", "id": item_id or new_id("rs"), "summary": [],
            "content": [{"type": "reasoning_text", "text": text}], "status": status}


def message_item(text: str, item_id: str | None = None, status: str = "completed") -> dict[str, Any]:
    """An assistant `message` output item with one `output_text` part."""
    return {"type": "message", "id": item_id or new_id("msg"), "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}


def call_item(call: dict[str, Any], tools: ToolMap, item_id: str | None = None,
              status: str = "completed") -> dict[str, Any]:
    """A chat tool call as a `function_call` (or `custom_tool_call`) output item."""
    function = call.get("function") or {}
    chat_name = function.get("name") or ""
    namespace, name = tools.namespaces.get(chat_name, (None, chat_name))
    arguments = function.get("arguments") or ""
    call_id = call.get("id") or new_id("call")
    if chat_name in tools.custom:
        try:
            parsed = orjson.loads(arguments or "{}")
        except orjson.JSONDecodeError:
            parsed = {"input": arguments}
        text = parsed.get("input") if isinstance(parsed, dict) else None
        item = {"type": "custom_tool_call", "id": item_id or new_id("ctc"), "call_id": call_id, "name": name,
                "input": text if isinstance(text, str) else arguments, "status": status}
    else:
        item = {"type": "function_call", "id": item_id or new_id("fc"), "call_id": call_id, "name": name,
                "arguments": arguments, "status": status}
    if namespace:
        item["namespace"] = namespace
    return item


def finished(base: dict[str, Any], output: list[dict[str, Any]], finish_reason: str | None,
             usage: dict[str, Any] | None) -> dict[str, Any]:
    """`base` (an envelope) completed with its output, or incomplete when the answer was cut."""
    done = {**base, "output": output, "usage": usage_of(usage)}
    if finish_reason == "length":
        done["status"] = "incomplete"
        done["incomplete_details"] = {"reason": "max_output_tokens"}
    elif finish_reason == "content_filter":
        done["status"] = "incomplete"
        done["incomplete_details"] = {"reason": "content_filter"}
    else:
        done["status"] = "completed"
    return done


def response_object(chat: dict[str, Any], base: dict[str, Any], tools: ToolMap) -> dict[str, Any]:
    """A finished chat completion as the Responses object (`base` from `envelope`)."""
    choice = (chat.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning:
        output.append(reasoning_item(reasoning))
    calls = message.get("tool_calls") or []
    if message.get("content") or not calls:
        output.append(message_item(message.get("content") or ""))
    output.extend(call_item(call, tools) for call in calls)
    return finished(base, output, choice.get("finish_reason"), chat.get("usage"))


def output_text(response: dict[str, Any]) -> str:
    """The text of a Responses object's messages (what the SDKs call `output_text`)."""
    return "".join(part.get("text", "") for item in response.get("output") or () if item.get("type") == "message"
                   for part in item.get("content") or () if part.get("type") == "output_text")


# --- chat stream -> Responses events -------------------------------------------------------------

class ResponsesStream:
    """Turn chat completion chunks into the Responses API's streaming events.

    `start()` gives `response.created` and `response.in_progress`; `feed(chunk)` the events a
    chunk adds (items open as their first delta arrives: reasoning, a message with one
    `output_text` part, one `function_call` per tool-call index); `end(error)` closes every
    open item and ends with `response.completed`, `response.incomplete` (cut by
    `max_output_tokens`) or `response.failed` carrying the error. Text and reasoning items
    close when another kind of output begins; tool calls stay open to the end, so fragments of
    parallel calls may interleave. Every event carries its `sequence_number`.
    """

    def __init__(self, base: dict[str, Any], tools: ToolMap) -> None:
        """Stream the response described by `base` (an `envelope`); `tools` names calls back."""
        self.base = base
        self.tools = tools
        self.assembler = StreamAssembler()
        self.sequence = 0
        self.output: list[dict[str, Any] | None] = []  # finished items, by output_index
        self._text: dict[str, Any] | None = None  # {"index", "id", "kind", "text"}
        self._calls: dict[int, dict[str, Any]] = {}  # chat tool index -> {"index", "id", "call"}
        self.final: dict[str, Any] | None = None

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def _snapshot(self, status: str) -> dict[str, Any]:
        return {**self.base, "status": status, "output": []}

    def start(self) -> list[dict[str, Any]]:
        """The opening events."""
        return [self._event("response.created", response=self._snapshot("in_progress")),
                self._event("response.in_progress", response=self._snapshot("in_progress"))]

    def _open_text(self, kind: str) -> list[dict[str, Any]]:
        """Open a reasoning or message item (closing the other kind first)."""
        events = self._close_text() if self._text is not None and self._text["kind"] != kind else []
        if self._text is not None:
            return events
        index = len(self.output)
        self.output.append(None)
        item: dict[str, Any]
        part: dict[str, Any]
        if kind == "reasoning":
            item_id = new_id("rs")
            item = {"type": "reasoning", "id": item_id, "summary": [], "content": [], "status": "in_progress"}
            part = {"type": "reasoning_text", "text": ""}
        else:
            item_id = new_id("msg")
            item = {"type": "message", "id": item_id, "status": "in_progress", "role": "assistant", "content": []}
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        self._text = {"index": index, "id": item_id, "kind": kind, "text": []}
        events.append(self._event("response.output_item.added", output_index=index, item=item))
        events.append(self._event("response.content_part.added", item_id=item_id, output_index=index,
                                  content_index=0, part=part))
        return events

    def _close_text(self) -> list[dict[str, Any]]:
        current, self._text = self._text, None
        if current is None:
            return []
        text, index, item_id = "".join(current["text"]), current["index"], current["id"]
        if current["kind"] == "reasoning":
            item = reasoning_item(text, item_id)
            part: dict[str, Any] = {"type": "reasoning_text", "text": text}
            done = self._event("response.reasoning_text.done", item_id=item_id, output_index=index,
                               content_index=0, text=text)
        else:
            item = message_item(text, item_id)
            part = item["content"][0]
            done = self._event("response.output_text.done", item_id=item_id, output_index=index,
                               content_index=0, text=text, logprobs=[])
        self.output[index] = item
        return [done,
                self._event("response.content_part.done", item_id=item_id, output_index=index, content_index=0,
                            part=part),
                self._event("response.output_item.done", output_index=index, item=item)]

    def _text_delta(self, kind: str, delta: str) -> list[dict[str, Any]]:
        events = self._open_text(kind)
        assert self._text is not None
        self._text["text"].append(delta)
        index, item_id = self._text["index"], self._text["id"]
        if kind == "reasoning":
            events.append(self._event("response.reasoning_text.delta", item_id=item_id, output_index=index,
                                      content_index=0, delta=delta))
        else:
            events.append(self._event("response.output_text.delta", item_id=item_id, output_index=index,
                                      content_index=0, delta=delta, logprobs=[]))
        return events

    def _call_delta(self, fragment: dict[str, Any]) -> list[dict[str, Any]]:
        position = fragment.get("index", 0)
        events: list[dict[str, Any]] = []
        slot = self._calls.get(position)
        function = fragment.get("function") or {}
        if slot is None:
            events += self._close_text()
            index = len(self.output)
            self.output.append(None)
            call = {"id": fragment.get("id") or new_id("call"), "type": "function",
                    "function": {"name": function.get("name") or "", "arguments": ""}}
            slot = self._calls[position] = {"index": index, "id": new_id("fc"), "call": call}
            item = call_item(call, self.tools, slot["id"], status="in_progress")
            events.append(self._event("response.output_item.added", output_index=index, item=item))
        elif function.get("name"):
            slot["call"]["function"]["name"] += function["name"]
        arguments = function.get("arguments") or ""
        if arguments:
            slot["call"]["function"]["arguments"] += arguments
            kind = ("response.custom_tool_call_input.delta" if slot["call"]["function"]["name"] in self.tools.custom
                    else "response.function_call_arguments.delta")
            events.append(self._event(kind, item_id=slot["id"], output_index=slot["index"], delta=arguments))
        return events

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The events one chat chunk adds."""
        self.assembler.add(chunk)
        events: list[dict[str, Any]] = []
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                events += self._text_delta("reasoning", reasoning)
            if delta.get("content"):
                events += self._text_delta("message", delta["content"])
            for fragment in delta.get("tool_calls") or ():
                events += self._call_delta(fragment)
        return events

    def _close_calls(self) -> list[dict[str, Any]]:
        events = []
        for slot in sorted(self._calls.values(), key=lambda s: s["index"]):
            item = call_item(slot["call"], self.tools, slot["id"])
            if item["type"] == "function_call":
                events.append(self._event("response.function_call_arguments.done", item_id=slot["id"],
                                          output_index=slot["index"], name=item["name"],
                                          arguments=item["arguments"]))
            else:
                events.append(self._event("response.custom_tool_call_input.done", item_id=slot["id"],
                                          output_index=slot["index"], input=item["input"]))
            self.output[slot["index"]] = item
            events.append(self._event("response.output_item.done", output_index=slot["index"], item=item))
        self._calls = {}
        return events

    def end(self, error: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Close the open items and end the response.

        `error` (`{"status", "message"}`) fails it: `response.failed` carries the error, with
        one of the codes the SDKs know (`rate_limit_exceeded` for a 429, else `server_error`).
        """
        events = self._close_text() + self._close_calls()
        output = [item for item in self.output if item is not None]
        if error is not None:
            code = "rate_limit_exceeded" if error.get("status") == 429 else "server_error"
            self.final = {**self.base, "status": "failed", "output": output,
                          "usage": usage_of(self.assembler.usage),
                          "error": {"code": code, "message": str(error.get("message") or "the answer failed")}}
            events.append(self._event("response.failed", response=self.final))
            return events
        self.final = finished(self.base, output, self.assembler.finish_reason, self.assembler.usage)
        kind = "response.incomplete" if self.final["status"] == "incomplete" else "response.completed"
        events.append(self._event(kind, response=self.final))
        return events


def sse(event: dict[str, Any]) -> bytes:
    """One event in SSE framing, named as OpenAI names it (`event: <type>` + `data: <json>`)."""
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
