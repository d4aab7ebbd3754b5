"""`ai-router chat`: the terminal chat (session state, slash commands, rendering, the loop)."""
