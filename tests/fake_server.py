"""A tiny OpenAI-compatible model server on 127.0.0.1 for the fault tests: it streams a scripted
reply, answers a yes/no question with `judgment`, or fails in the way `mode` says (slow, wrong key,
garbage, killed mid-answer, a chat template without a system turn, no log-probabilities), and keeps
every request it was sent."""

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL_ID = "fake-model"


class FakeModelServer:
    """`with FakeModelServer("reply") as server:` serves on `server.url` (…/v1) until the block ends."""

    def __init__(self, reply: str = "", mode: str = "ok", delay: float = 0.0, judgment: float = 1.0,
                 coverage: float = 1.0):
        self.reply, self.mode, self.delay = reply, mode, delay
        # P(yes) it gives a yes/no question (a request without streaming): that a source states an
        # answer sentence, and that a source answers (or is about) the question.
        self.judgment, self.coverage = judgment, coverage
        self.requests: list[dict] = []
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._http.server_port}/v1"

    def __enter__(self):
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._http.shutdown()
        self._http.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet test output
                pass

            def do_GET(self):
                if self.path.endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": MODEL_ID, "object": "model"}]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "body": body, "authorization": self.headers.get("Authorization")})
                if server.mode == "slow":
                    time.sleep(server.delay)
                if server.mode == "unauthorized":
                    return self._json(401, {"error": {"message": "Invalid API key", "type": "invalid_request_error"}})
                if server.mode == "no-system" and any(m["role"] == "system" for m in body.get("messages", [])):
                    return self._json(400, {"error": {"message": "System role not supported"}})
                if server.mode == "garbage":
                    return self._raw(200, "text/html", b"<html><body>502 Bad Gateway... or is it?</body></html>")
                if server.mode == "garbage-json":
                    return self._raw(200, "text/event-stream", b'data: {"hello": "world"}\n\ndata: [DONE]\n\n')
                chat = self.path.endswith("/chat/completions")
                if server.mode == "no-logprobs" and body.get("logprobs"):  # as llama-cpp-python's server by default
                    return self._json(500, {"error": {"message": "logprobs is not supported for models created with "
                                                                 "logits_all=False"}})
                if not body.get("stream"):
                    about_a_sentence = "Answer sentence:" in json.dumps(body.get("messages") or body.get("prompt"))
                    probability = server.judgment if about_a_sentence else server.coverage
                    return self._json(200, judgment_reply(probability, chat, bool(body.get("logprobs"))))
                self._stream(body, chat=chat)

            def _stream(self, body, chat: bool):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                words = server.reply.split(" ")
                for position, word in enumerate(words):
                    piece = word if position == 0 else " " + word
                    self._chunk(completion_chunk(piece, None, chat))
                    if server.mode == "die" and position == 1:
                        self.wfile.flush()
                        self.connection.shutdown(2)  # the server is killed: no end of the stream
                        self.close_connection = True
                        return
                self._chunk(completion_chunk("", "stop", chat))
                self._chunk(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")

            def _chunk(self, data: bytes):
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _json(self, status: int, value: dict):
                self._raw(status, "application/json", json.dumps(value).encode())

            def _raw(self, status: int, content_type: str, data: bytes):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def judgment_reply(probability: float, chat: bool, with_logprobs: bool) -> dict:
    """A one-token reply to a yes/no question, with the top log-probabilities of its first token when asked."""
    alternatives = {"Yes": math.log(max(probability, 1e-9)), "No": math.log(max(1 - probability, 1e-9))}
    chosen = max(alternatives, key=alternatives.get)
    if chat:
        top = [{"token": token, "logprob": logprob, "bytes": None} for token, logprob in alternatives.items()]
        logprobs = {"content": [{"token": chosen, "logprob": alternatives[chosen], "bytes": None, "top_logprobs": top}]}
        choice = {"index": 0, "message": {"role": "assistant", "content": chosen}, "finish_reason": "length",
                  "logprobs": logprobs if with_logprobs else None}
        kind = "chat.completion"
    else:
        logprobs = {"tokens": [chosen], "token_logprobs": [alternatives[chosen]], "top_logprobs": [alternatives], "text_offset": [0]}
        choice = {"index": 0, "text": chosen, "finish_reason": "length", "logprobs": logprobs if with_logprobs else None}
        kind = "text_completion"
    return {"id": "x", "object": kind, "created": 0, "model": MODEL_ID, "choices": [choice]}


def completion_chunk(piece: str, finish_reason: str | None, chat: bool) -> bytes:
    if chat:
        choice = {"index": 0, "delta": {"content": piece} if piece else {}, "finish_reason": finish_reason}
        kind = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": piece, "finish_reason": finish_reason, "logprobs": None}
        kind = "text_completion"
    chunk = {"id": "x", "object": kind, "created": 0, "model": MODEL_ID, "choices": [choice]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"
