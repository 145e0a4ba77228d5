"""tus 1.0.0 resumable uploads: the protocol (router), offsets and checksums (service), the
bytes as chunk objects in the shared store (store)."""
