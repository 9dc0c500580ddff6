"""AI bots (智能机器人): callbacks from WeCom's AI bots, answered by the same handlers as apps.

`messages` types what a bot receives; `replies` are what a bot may answer (streams, cards,
welcomes, card updates); `streams` keeps every stream's state in the shared store, so that any
worker (or host) answers WeCom's refresh callbacks and a restart loses nothing; `receiver`
verifies, decrypts and routes bot callbacks; `media` downloads and decrypts what members send.
"""
