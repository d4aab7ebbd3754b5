"""`ai-router serve`: an OpenAI-compatible HTTP server over the router.

app.py builds the FastAPI app (routes, lifespan), openai_format.py turns router
results into OpenAI bodies, streaming.py writes SSE and cancels on disconnect,
failures.py maps errors to OpenAI error bodies, headers.py makes the transparency
headers, security.py holds the bind check, bearer auth and body limit, command.py
is the CLI command.
"""
