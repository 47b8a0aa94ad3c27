"""Client for models exported by `bin/export` and served by TF Serving (REST or gRPC).

A thin re-export of `tfsent.export.client`; see there for the details.

Example:

```python
from tfsent.serving import ServingClient

client = ServingClient("localhost:8501", "demo_fusion")
client.predict_wav([open("a.wav", "rb").read()], text=["오늘 정말 행복해요"])["label"]
```
"""

from tfsent.export.client import (  # noqa: F401
    PROTOCOLS,
    ServingClient,
    ServingConnectionError,
    ServingError,
    ServingRequestError,
    ServingTimeoutError,
)

__all__ = [
    "PROTOCOLS",
    "ServingClient",
    "ServingConnectionError",
    "ServingError",
    "ServingRequestError",
    "ServingTimeoutError",
]
