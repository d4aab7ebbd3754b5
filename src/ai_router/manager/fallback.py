"""The deterministic decision used when the manager model is down, slow or talks nonsense.

Keyword and feature heuristics, first match wins. The order matters: a request to
"write a Python function" is coding before it is writing, and "convert this to
JSON" is extraction before anything else.
"""

from __future__ import annotations

import re

from ..digest import Digest
from ..schema import CAPABILITIES, Capability, RoutingDecision, Tier

MIN_OUTPUT_TOKENS = 16
MAX_OUTPUT_TOKENS = 32_000

# Typical answer length per capability (a strong model's median answer on MT-Bench and
# GSM8K, docs/benchmarks.md); adjusted below by what the user asks for.
BASE_OUTPUT_TOKENS: dict[Capability, int] = {
    "chat": 200, "knowledge": 450, "writing": 400, "coding": 600,
    "math": 250, "reasoning": 300, "extraction": 200,
}
# With nothing nearer to go by. Word problems and textbook math are cheap: a cheap model
# solves most (RouteLLM's GSM8K outcomes: 29% needed the strong model).
TIER_BY_CAPABILITY: dict[Capability, Tier] = {
    "coding": "strong", "reasoning": "strong", "math": "cheap",
    "chat": "cheap", "knowledge": "cheap", "writing": "cheap", "extraction": "cheap",
}


def _words(*patterns: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(patterns) + r")\b", re.IGNORECASE)


CODE_FENCE = re.compile(r"```|^\s{4,}\S.*[;{}()]\s*$", re.MULTILINE)
_CODE = _words(
    r"python", r"javascript", r"typescript", r"java", r"golang", r"rust", r"kotlin",
    r"swift", r"ruby", r"php", r"c\+\+", r"c#", r"sql", r"html", r"css", r"bash",
    r"shell script", r"powershell", r"regex", r"function", r"functions",
    r"bug", r"debug", r"compile[sd]?", r"compiler", r"stack ?trace",
    r"traceback", r"exception", r"segfault", r"refactor", r"unit tests?", r"code",
    r"script", r"algorithm", r"git", r"docker", r"kubernetes", r"api", r"endpoint",
    r"npm", r"pip", r"def", r"null pointer", r"implement")
_EXTRACTION = re.compile(
    r"\b(?:summari[sz]e|summary|tl;?dr|extract|translat(?:e|ion)|key points|categori[sz]e)\b"
    r"|\bconvert\b.*\b(?:json|csv|yaml|xml|table|markdown)\b"
    r"|\b(?:to|as|into|in) (?:json|csv|yaml|a table)(?: format)?\b",
    re.IGNORECASE | re.DOTALL)
# Work on text the user supplies ("the following paragraph", "the reviews below"), unless
# asked to write or edit it
_TEXTS = (r"(?:text|paragraph|passage|sentences?|article|data|records?|reviews?|table"
          r"|emails?|document|transcript|notes)")
_SUPPLIED_TEXT = re.compile(rf"\b(?:following|given) {_TEXTS}\b|\b{_TEXTS} (?:below|above)\b",
                            re.IGNORECASE)
# "2-0" and "10-20" are scores and ranges, "$5 and $7" prices: not notation
_MATH_NOTATION = re.compile(
    r"\d\s*[+*/^×÷=]\s*\d|\d\s+-\s+\d|\\(?:frac|int|sum|sqrt|cdot)|[∫∑√π≤≥≠∞]"
    r"|\$[^$\n]*[\\^_=][^$\n]*\$|\b[a-z]\s*\^\s*\d|\b\d*[xy]\s*[-+=]\s*\d")
_MATH = _words(
    r"equation", r"integral", r"derivative", r"solve for", r"probability", r"calculate",
    r"compute", r"arithmetic", r"algebra", r"geometry", r"calculus", r"matrix",
    r"eigenvalues?", r"factorial", r"primes?", r"percent(?:age)?", r"average", r"sum of",
    r"how many", r"how much", r"how long", r"how old", r"how far", r"remainder", r"total",
    r"altogether", r"in all", r"each", r"per")
# Word problems spell numbers out: "two thirds of her 27 puppies"
_DIGITS = re.compile(r"\d+(?:\.\d+)?")
_NUMBER = re.compile(r"\d+(?:\.\d+)?|\b(?:one|two|three|four|five|six|seven|eight|nine|ten"
                     r"|eleven|twelve|twenty|thirty|forty|fifty|hundred|thousand|half|thirds?"
                     r"|fourths?|quarters?|twice|triple|double|dozen)\b", re.IGNORECASE)
_WRITING = _words(
    r"write", r"draft", r"compose", r"poem", r"poetry", r"story", r"essay", r"email",
    r"letter", r"blog post", r"article", r"rewrite", r"rephrase", r"proofread", r"edit",
    r"grammar", r"grammatical",
    r"lyrics", r"haiku", r"tweet", r"slogan", r"speech", r"toast", r"cover letter")
# Puzzles, logic, counterfactuals and decisions: MT-Bench's "reasoning". Explaining a
# subject ("why", "explain", "compare") is knowledge there, as in the seed bank.
_REASONING = re.compile(
    r"\b(?:puzzle|riddle|logic(?:al)?|deduce|syllogism|fallacy|paradox|what if|suppose"
    r"|should i|think through|lies|liar|truth-?tellers?|estimate how many"
    r"|(?:does not|doesn't) belong|step by step|reason (?:it )?out|trade-?offs? for (?:me|us)"
    r"|plan (?:a|my|our|the)|strategy)\b", re.IGNORECASE)
_ROLEPLAY = re.compile(
    r"\b(?:pretend (?:to be|you(?:'re| are))|imagine you(?:'re| are)|act as|role-?play"
    r"|you are (?:a|an|my) (?!\w+ (?:assistant|model))|in the (?:voice|role) of)\b",
    re.IGNORECASE)
# Exam-style multiple choice: "A. ...", "(B) ...", "C) ..." on lines of their own
_CHOICES = re.compile(r"^\s*\(?[A-Da-d][.)]\s+\S", re.MULTILINE)
_GREETING = re.compile(
    r"^\W*(?:hi|hello|hey|yo|thanks|thank you|good (?:morning|evening|night)|"
    r"how are you|what'?s up|bye)\b", re.IGNORECASE)
MATH_NUMBERS = 3  # "how many" with a few quantities (digits or words) is a word problem
LONG_QUESTION_WORDS = 20  # small talk is short; a long request with no other cue asks something
_FACT_QUESTION = re.compile(
    r"^\W*(?:what|who|whom|whose|when|where|which|how (?:many|much|far|long|old|big|tall)"
    r"|is|are|was|were|does|did|do|can|define|name|list|explain|describe|compare|discuss"
    r"|outline|why|how (?:does|do|did|is|are|can|could|would)|what are the)\b", re.IGNORECASE)
SHORT_ANSWER = _words(r"one sentence", r"one word", r"in a word", r"briefly", r"brief",
                r"short", r"quick(?:ly)?", r"yes or no", r"one line", r"concise")
LONG_ANSWER = _words(r"detailed", r"in depth", r"in-depth", r"comprehensive", r"thorough",
               r"long", r"full", r"complete", r"entire", r"essay", r"report", r"chapter")


# Cues that name the task outright, whatever the topic's words suggest: a riddle about
# numbers is still a riddle, counting words in a supplied text is still extraction.
_EXPLICIT_REASONING = re.compile(
    r"\b(?:riddle|puzzle|odd one out|(?:does not|doesn't) belong|how can (?:you|i|we|one) tell"
    r"|knights? and knaves?|always (?:lies|tells the truth)|(?:immediately|directly) to the"
    r" (?:left|right) of|how (?:is|are) \w+ related to)\b", re.IGNORECASE)
_EXPLICIT_EXTRACTION = re.compile(
    r"\b(?:summari[sz]e|extract|pull out|translate|categori[sz]e|classify|label each"
    r"|count how (?:many times|often)|according to the (?:passage|text|article))\b",
    re.IGNORECASE)
# a block of text: after a colon or blank line, quoted at length, or a table
_SUPPLIED = re.compile(r":\s*\n|\n\s*\n|(?:^|[\s:])[\"'“‘][^\"'“”‘’\n]{40,}|\|.*\|")


def explicit_capability(text: str) -> Capability | None:
    """A capability the request names outright (see above), or None."""
    if CODE_FENCE.search(text) or _CODE.search(text):
        return None  # "translate this function to Go" is coding
    if _ROLEPLAY.search(text) and not _WRITING.search(text):
        return "chat"
    if _EXPLICIT_REASONING.search(text):
        return "reasoning"
    if _EXPLICIT_EXTRACTION.search(text) and (_SUPPLIED.search(text)
                                              or _SUPPLIED_TEXT.search(text)):
        return "extraction"
    return None


def classify(text: str) -> Capability:
    """The capability a request most likely needs, from its text alone."""
    return explicit_capability(text) or keyword_capability(text)


def keyword_capability(text: str) -> Capability:
    """The keywords' guess, first match wins (see the module docstring)."""
    if CODE_FENCE.search(text) or _CODE.search(text):
        return "coding"
    if _EXTRACTION.search(text):
        return "extraction"
    if _MATH_NOTATION.search(text) or (
            _MATH.search(text) and (len(_DIGITS.findall(text)) >= 2
                                    or len(_NUMBER.findall(text)) >= MATH_NUMBERS)):
        return "math"
    if _WRITING.search(text):
        return "writing"
    if _SUPPLIED_TEXT.search(text):
        return "extraction"
    if _ROLEPLAY.search(text):
        return "chat"
    if _REASONING.search(text):
        return "reasoning"
    if _GREETING.search(text):
        return "chat"
    if (_FACT_QUESTION.search(text) or text.rstrip().endswith("?")
            or len(_CHOICES.findall(text)) >= 3 or len(text.split()) >= LONG_QUESTION_WORDS):
        return "knowledge"
    return "chat"


def estimate_output_tokens(capability: Capability, digest: Digest) -> int:
    return adjust_output_tokens(BASE_OUTPUT_TOKENS[capability], capability, digest)


def adjust_output_tokens(tokens: int, capability: Capability, digest: Digest) -> int:
    """A typical length for the capability, scaled by what the user asks for."""
    if SHORT_ANSWER.search(digest.text):
        tokens = min(tokens, 150)
    elif LONG_ANSWER.search(digest.text):
        tokens *= 2
    if capability == "extraction":  # converting or translating text yields text of similar size
        tokens = max(tokens, digest.text_chars // 4)
    return clamp_output_tokens(tokens, digest.requested_max_output)


def clamp_output_tokens(tokens: int, requested_max: int | None = None) -> int:
    upper = min(MAX_OUTPUT_TOKENS, requested_max) if requested_max else MAX_OUTPUT_TOKENS
    return max(MIN_OUTPUT_TOKENS, min(tokens, max(upper, MIN_OUTPUT_TOKENS)))


def fallback_decision(digest: Digest) -> RoutingDecision:
    """A sensible decision with no model: never raises, always the same for the same digest."""
    if digest.virtual_model in CAPABILITIES:  # the client already said what it needs
        capability: Capability = digest.virtual_model  # type: ignore[assignment]
    else:
        capability = classify(digest.text)
    return RoutingDecision(
        capability=capability,
        output_tokens=estimate_output_tokens(capability, digest),
        tier=TIER_BY_CAPABILITY[capability],
        reason=f"heuristic: {capability}",
    )
