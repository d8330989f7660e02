"""What every model backend (the local GGUF, a model server) does alike with a conversation's
messages: lays them out as plain text for a model without a chat template, stops a base model
before it invents the next question, and reads a yes/no judgment from the words a reply begins with.
"""

# Stops for a base model: it would otherwise go on to invent the next question and answer.
BASE_MODEL_STOPS = ["\n\n", "\nQuestion:", "\nSources", "<end_of_turn>", "<eos>"]
YES_WORDS = ["yes", "Yes", "YES", " yes", " Yes", "是", "对"]
NO_WORDS = ["no", "No", "NO", " no", " No", "否", "不"]


def plain_fields(messages: list[dict[str, str]]) -> dict[str, str]:
    """The system and user text of a conversation, for a model without a chat template."""
    system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    user = "\n\n".join(m["content"] for m in messages if m["role"] != "system")
    return {"system": system, "user": user}


def system_folded_into_user(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    fields = plain_fields(messages)
    return [{"role": "user", "content": f"{fields['system']}\n\n{fields['user']}".strip()}]
