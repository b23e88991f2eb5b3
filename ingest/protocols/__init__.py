"""Protocol adapters: what log shippers send (OTLP/HTTP, Loki push, stdlib HTTPHandler forms) -> records.

One module per protocol, pure on both ends: ``decode`` turns a request body into ``records.Decoded``
(or raises ``records.ProtocolError``), and the module's encoders turn a receipt or a problem into the
response that protocol's clients expect. Nothing here imports protobuf or snappy at import time; each
adapter loads its library on first use, so only the route that needs it pays the import.
"""
