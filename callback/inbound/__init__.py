"""Inbound: what WeCom sends us, from the HTTP edge to a typed message and its passive reply.

`endpoint` (the WSGI edge) -> `receiver` (verify, decrypt, parse, hand to delivery) ->
`crypto` and `envelope` (the WXBizMsgCrypt scheme) -> `xmlcodec` and `messages` (typed values,
with their bases in `base` and the event classes in `events`);
`replies` are the passive answers a handler may return.
"""
