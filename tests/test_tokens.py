"""Offline token counts: exact for OpenAI tokenizers, never low for everyone else."""

from __future__ import annotations

import inspect
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ai_router import tokens
from ai_router.schema import ChatRequest
from ai_router.tokens import IMAGE_TOKENS, count_request, count_text, estimate

OPENCLAW = Path(__file__).parent / "fixtures" / "openclaw"  # captured from the real agent

ENGLISH = (
    "A personal LLM gateway with a fixed daily budget. A small, always-on local model reads "
    "every request and proposes a routing decision; a deterministic guard checks that proposal "
    "against the budget ledger, the model registry and provider health. Internationalization, "
    "responsibilities and straightforwardness are long words; so is Straßenbahnhaltestelle. ")
CHINESE = ("人工智能路由器是一个个人语言模型网关，每天有固定的预算。我们今天去公园散步，天气很好，"
           "阳光明媚，孩子们在草地上玩耍。当一天的钱用完时，所有功能都会在本地模型上继续运行。")
JAPANESE = ("東京は日本の首都であり、世界で最も人口の多い都市圏の一つです。"
            "ひらがなとカタカナと漢字を組み合わせて書きます。コンピューターのプログラムを書くのは楽しいです。")
KOREAN = ("서울은 대한민국의 수도이며 가장 큰 도시입니다. 오늘 날씨가 정말 좋네요. "
          "우리 같이 공원에 산책하러 갈까요? ")
EMOJI = "Hello 👋 world 🌍! Great job 🎉🎉🎉 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️‍🔥 🇩🇪🇯🇵 🧑🏽‍💻 "


def _corpus() -> dict[str, str]:
    rnd = random.Random(7)
    return {
        "english": ENGLISH * 4,
        "code": inspect.getsource(json.decoder) + inspect.getsource(random.Random.shuffle),
        "json": json.dumps(json.loads((OPENCLAW / "toolcall_followup_request.json").read_text()),
                           indent=1, ensure_ascii=False),
        "chinese": CHINESE * 3, "japanese": JAPANESE * 3, "korean": KOREAN * 3,
        "emoji": EMOJI * 4,
        "numbers": ", ".join(str(rnd.randint(0, 10**9)) for _ in range(150)),
        "digits": " ".join(str(rnd.randint(0, 9)) for _ in range(200)),
        "floats": json.dumps([rnd.random() for _ in range(60)]),
        "hex_ids": " ".join(f"{rnd.getrandbits(128):032x}" for _ in range(20)),
        "cyrillic": "Москва является столицей России и крупнейшим городом страны. " * 4,
        "system_prompt": (OPENCLAW / "agent_exec_system_prompt.txt").read_text()[:8000],
    }


def _true_counts(text: str) -> int:
    return max(len(tokens.encoding(name).encode_ordinary(text))
               for name in ("o200k_base", "cl100k_base"))


def test_openai_models_are_counted_exactly_from_a_fresh_cache_without_the_network(tmp_path):
    cache = tmp_path / "fresh-cache"
    script = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network is off in this test')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse\n"
        "from ai_router.tokens import count_text\n"
        "print(count_text('hello world', 'gpt-4o').tokens,"
        " count_text('tiktoken is great!', 'openai/gpt-5.5').tokens,"
        " count_text('你好，世界', 'gpt-4.1').tokens, count_text('你好，世界', 'gpt-4').tokens,"
        " count_text('hello world', 'gpt-3.5-turbo').exact)\n")
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(cache)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2", "6", "3", "6", "True"]
    assert len(list(cache.iterdir())) == 2  # o200k_base and cl100k_base, seeded by us


def test_a_users_tiktoken_cache_dir_is_kept_and_filled_when_it_lacks_the_files(
        tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(mine))
    assert tokens.ensure_tiktoken_cache("o200k_base") == mine
    seeded = list(mine.iterdir())
    assert [p.name for p in seeded] == ["fb374d419588a4632f3f557e76b4b70aebbca790"]
    before = seeded[0].stat().st_mtime_ns
    assert tokens.ensure_tiktoken_cache("o200k_base") == mine  # already there: left alone
    assert seeded[0].stat().st_mtime_ns == before
    assert os.environ["TIKTOKEN_CACHE_DIR"] == str(mine)


def test_without_a_users_cache_dir_ours_is_seeded_under_the_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "recorded so that teardown restores it")
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    directory = tokens.ensure_tiktoken_cache("cl100k_base")
    assert directory == tmp_path / "xdg" / "ai-router" / "tiktoken"
    assert os.environ["TIKTOKEN_CACHE_DIR"] == str(directory)
    assert (directory / "9b5ad71b2ce5302211f9c61530b329a4922fc6a4").stat().st_size > 1_000_000


@pytest.mark.parametrize(("model", "encoding"), [
    ("gpt-4o", "o200k_base"), ("gpt-4.1-mini", "o200k_base"), ("gpt-5.4-mini", "o200k_base"),
    ("gpt-5.5", "o200k_base"), ("o3", "o200k_base"), ("o4-mini", "o200k_base"),
    ("chatgpt-4o-latest", "o200k_base"), ("openai/gpt-4o", "o200k_base"),
    ("gpt-4", "cl100k_base"), ("gpt-3.5-turbo", "cl100k_base"), ("gpt-4-turbo", "cl100k_base"),
    ("claude-sonnet-4-6", None), ("deepseek-chat", None), ("qwen-plus", None), (None, None)])
def test_openai_model_names_map_to_their_tokenizer_and_others_to_none(model, encoding):
    assert tokens.encoding_name(model) == encoding


def test_other_models_get_an_estimate_marked_as_not_exact():
    count = count_text(ENGLISH, "claude-haiku-4-5")
    assert not count.exact
    assert count.tokens >= _true_counts(ENGLISH)


def test_the_estimate_never_undercounts_either_openai_tokenizer_on_varied_text():
    corpus = _corpus()
    rnd = random.Random(2026)
    cases = list(corpus.items())
    for _ in range(400):  # random slices of every kind, and random mixtures of kinds
        name, text = rnd.choice(cases)
        start = rnd.randrange(len(text))
        cases.append((name, text[start:start + rnd.choice([3, 10, 40, 200, 1000])]))
        parts = rnd.sample(list(corpus.values()), 3)
        cases.append(("mix", "".join(p[:rnd.randrange(1, 300)] for p in parts)))
    for name, text in cases:
        assert estimate(text) >= _true_counts(text), (name, text[:60])


def test_chinese_is_estimated_at_no_less_than_one_token_per_character():
    assert estimate(CHINESE) >= len(CHINESE)
    assert estimate(CHINESE) > 2 * len(CHINESE) / 4  # what 4 characters per token would say


def test_english_estimates_stay_within_twice_the_real_count():
    text = ENGLISH * 10
    assert _true_counts(text) <= estimate(text) <= 2 * _true_counts(text)


def _request(**kw) -> ChatRequest:
    return ChatRequest(model="gpt-4o", messages=[{"role": "user", "content": "Hi there"}], **kw)


def test_a_chat_request_counts_messages_with_their_overhead_exactly():
    # OpenAI documents 3 tokens per message + 3 to prime the reply; we keep 1 spare each.
    request = ChatRequest(model="gpt-4o", messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello world"}])
    enc = tokens.encoding("o200k_base")
    texts = ["system", "Be brief.", "user", "hello world"]
    assert count_request(request) == tokens.TokenCount(
        sum(len(enc.encode(t)) for t in texts) + 2 * 4 + 3, True)


def test_text_parts_count_like_string_content():
    parts = ChatRequest(model="gpt-4o", messages=[
        {"role": "user", "content": [{"type": "text", "text": "Hi there"}]}])
    assert count_request(parts) == count_request(_request())


def test_tool_definitions_are_counted_with_their_json_schemas():
    tool = {"type": "function", "function": {
        "name": "read_file", "description": "Read a file from the workspace and return it.",
        "parameters": {"type": "object", "required": ["path"],
                       "properties": {"path": {"type": "string", "description": "file path"}}}}}
    without, with_tool = count_request(_request()), count_request(_request(tools=[tool]))
    schema_tokens = len(tokens.encoding("o200k_base").encode(json.dumps(tool)))
    assert with_tool.tokens - without.tokens >= schema_tokens * 0.8
    assert with_tool.exact


def test_assistant_tool_calls_and_tool_results_are_counted():
    arguments = json.dumps({"prompt": "What is the capital of Australia? " * 20})
    result = "Canberra is the capital city of Australia. " * 30
    base = ChatRequest(model="gpt-4o", messages=[{"role": "user", "content": "ask"}])
    turn = ChatRequest(model="gpt-4o", messages=[
        {"role": "user", "content": "ask"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call1", "type": "function",
             "function": {"name": "route_and_ask", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "call1", "content": result}])
    enc = tokens.encoding("o200k_base")
    added = count_request(turn).tokens - count_request(base).tokens
    assert added >= len(enc.encode(arguments)) + len(enc.encode(result)) + 2 * 4


def test_images_add_a_conservative_fixed_count_and_make_the_count_inexact():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    with_image = ChatRequest(model="claude-sonnet-4-6", messages=[
        {"role": "user", "content": [{"type": "text", "text": "Hi there"}, image, image]}])
    plain = ChatRequest(model="claude-sonnet-4-6", messages=[
        {"role": "user", "content": "Hi there"}])
    count = count_request(with_image)
    assert count.tokens == count_request(plain).tokens + 2 * IMAGE_TOKENS
    assert not count_request(with_image, "gpt-4o").exact
    # OpenAI's small models bill image patches at a multiple: never below the default figure
    assert tokens.image_tokens("gpt-4o-mini") > tokens.image_tokens("gpt-4.1-nano") > IMAGE_TOKENS


def _openclaw_request() -> ChatRequest:
    body = json.loads((OPENCLAW / "agent_exec_first_request.json").read_text())["body"]
    body["messages"][0]["content"] = (OPENCLAW / "agent_exec_system_prompt.txt").read_text()
    return ChatRequest.model_validate(body)


def test_the_real_openclaw_request_counts_within_sane_bounds():
    request = _openclaw_request()
    chars = len(json.dumps(request.model_dump(exclude_none=True), ensure_ascii=False))
    exact = count_request(request, "gpt-5.4-mini")
    estimated = count_request(request, "claude-sonnet-4-6")
    system = len(tokens.encoding("o200k_base").encode(request.messages[0]["content"]))
    assert exact.exact and not estimated.exact
    assert system < exact.tokens < chars / 3  # more than its system prompt, ~4 chars a token
    assert exact.tokens <= estimated.tokens <= 2 * exact.tokens


def test_counting_the_real_openclaw_request_takes_well_under_fifty_milliseconds():
    request = _openclaw_request()
    for model in ("gpt-5.4-mini", "deepseek-chat"):
        count_request(request, model)  # warm the encoding cache
        best = min(_timed(lambda m=model: count_request(request, m)) for _ in range(3))
        assert best < 0.05, (model, best)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
