"""An OpenAI- and Anthropic-compatible proxy that scores and acts per request."""

__all__: list[str] = []
