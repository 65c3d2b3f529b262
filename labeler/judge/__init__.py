"""The GenRM judge: `judge` (both orders, pooled), `reward` (the Bradley-Terry judge), `prompts` and `templates/`,
`parse` (verdicts), `aggregate` (pooling), `adaptive` (early stopping), `backends/` (the models that answer)."""
