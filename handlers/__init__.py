"""This deployment's handlers: each module holds a `router = Router()` (loaded in name order)."""
