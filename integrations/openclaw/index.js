// OpenClaw plugin: ai-router's `route_and_ask` as a direct agent tool.
//
// The tool POSTs the question to `ai-router serve` (POST /v1/route_and_ask), which picks
// the best model today's budget allows, and hands the answer back to the agent with a
// one-line footer saying who answered and what it cost. Plain Node ESM with no
// dependencies: global fetch and AbortSignal only.

export const TOOL_NAME = "route_and_ask";
export const DEFAULT_ROUTER_URL = "http://127.0.0.1:8787";
export const DEFAULT_TIMEOUT_SECONDS = 300;
const CAPABILITIES = ["chat", "knowledge", "writing", "coding", "math", "reasoning", "extraction"];

const DESCRIPTION =
  "Delegate one question to the best model today's budget allows (a stronger remote model " +
  "for hard coding/math/reasoning, a cheap or local one otherwise). Returns the answer plus " +
  "which model answered, its tier, the cost and the budget left.";

// Mirrors ai_router.tool.ToolQuestion (the server validates it again).
export const PARAMETERS = {
  type: "object",
  additionalProperties: false,
  required: ["prompt"],
  properties: {
    prompt: { type: "string", minLength: 1, description: "The question or task to delegate." },
    capability: {
      type: "string",
      enum: CAPABILITIES,
      description: "What the task needs; omit to let the router decide.",
    },
    max_cost_usd: {
      type: "number",
      minimum: 0,
      description: "The most this one call may cost, in USD.",
    },
    context: { type: "string", description: "Background the answer needs." },
  },
};

/** The plugin's settings (`plugins.entries.ai-router.config`) with defaults applied. */
export function settings(pluginConfig) {
  const config = pluginConfig ?? {};
  const timeout = Number(config.timeoutSeconds);
  return {
    routerUrl: String(config.routerUrl || DEFAULT_ROUTER_URL).replace(/\/+$/, ""),
    apiKey: config.apiKey || undefined,
    timeoutSeconds: timeout > 0 ? timeout : DEFAULT_TIMEOUT_SECONDS,
  };
}

const usd = (value) => `$${Number(value ?? 0).toFixed(4)}`;

/** The answer, then one footer line: model, tier, cost, budget left, and why if downgraded. */
export function formatAnswer(answer) {
  const parts = [
    `ai-router: ${answer.model} (${answer.tier} tier)`,
    `cost ${usd(answer.cost_usd)}`,
    `${usd(answer.remaining_usd)} left today`,
  ];
  if (answer.offline) parts.push("offline");
  if (answer.note) parts.push(`note: ${answer.note}`);
  return `${answer.answer}\n\n— ${parts.join(" · ")}`;
}

function textResult(text, details) {
  return { content: [{ type: "text", text }], details };
}

function failure(message, extra = {}) {
  const text = `route_and_ask failed: ${message}`;
  return textResult(text, { ok: false, error: text, ...extra });
}

async function errorMessage(response) {
  // ai-router answers errors in OpenAI's shape: {"error": {"message", "type", "code"}}
  const raw = await response.text().catch(() => "");
  try {
    return JSON.parse(raw).error?.message || raw;
  } catch {
    return raw.slice(0, 500) || response.statusText;
  }
}

const HINTS = {
  401: "set plugins.entries.ai-router.config.apiKey to the server's AI_ROUTER_API_KEY",
  413: "the question is larger than the server's body limit",
};

/** One delegated question; every failure becomes a readable tool result, never a throw. */
export async function routeAndAsk(params, config, signal) {
  const { routerUrl, apiKey, timeoutSeconds } = config;
  const url = `${routerUrl}/v1/route_and_ask`;
  const headers = { "content-type": "application/json", accept: "application/json" };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  const deadline = AbortSignal.timeout(timeoutSeconds * 1000);
  const question = {};
  for (const key of Object.keys(PARAMETERS.properties)) {
    if (params?.[key] !== undefined && params[key] !== null) question[key] = params[key];
  }
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers,
      body: JSON.stringify(question),
      signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
    });
  } catch (e) {
    if (deadline.aborted) {
      return failure(`ai-router at ${routerUrl} gave no answer within ${timeoutSeconds} s`,
                     { timedOut: true, timeoutMs: Math.round(timeoutSeconds * 1000) });
    }
    if (signal?.aborted) return failure("cancelled");
    const cause = e?.cause?.code || e?.cause?.message || e?.message || String(e);
    return failure(`could not reach ai-router at ${routerUrl} (${cause}); ` +
                   "is `ai-router serve` running, and is routerUrl right?");
  }
  if (!response.ok) {
    const message = await errorMessage(response);
    const retry = response.headers.get("retry-after");
    const hint = HINTS[response.status] || (retry ? `retry in ${retry} s` : "");
    return failure(`ai-router answered HTTP ${response.status}: ${message}` +
                   (hint ? ` (${hint})` : ""), { httpStatus: response.status });
  }
  let answer;
  try {
    answer = await response.json();
  } catch (e) {
    return failure(`ai-router sent a reply that is not JSON (${e?.message || e})`);
  }
  return textResult(formatAnswer(answer), answer);
}

export default {
  id: "ai-router",
  name: "ai-router",
  description: "route_and_ask: delegate a question to the best model today's budget allows",
  register(api) {
    const config = settings(api.pluginConfig);
    api.registerTool({
      name: TOOL_NAME,
      label: "Route and ask",
      description: DESCRIPTION,
      parameters: PARAMETERS,
      // a direct tool: in the model's tools array, not behind tool_search/tool_call
      catalogMode: "direct-only",
      async execute(_toolCallId, params, signal) {
        return routeAndAsk(params, config, signal);
      },
    });
  },
};
