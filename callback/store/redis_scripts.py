"""The Lua scripts that make each RedisStore operation one atomic step on the server.

Every time comes from the caller's clock (`now` in ARGV) and every stored number is written from
ARGV as Python formatted it, so floats round-trip exactly (Lua would print them with 14 digits).
Calls that lease or record something take a one-off `token`: when a connection drops after the
server ran the script, the client's retry finds its own token and returns the same answer.
"""

from __future__ import annotations

from string import Template

from callback.store.records import DEAD, DONE, PENDING, RUNNING


def _lua(source: str) -> str:
    return Template(source).substitute(RUNNING=RUNNING, DONE=DONE, PENDING=PENDING, DEAD=DEAD)


# -- values and locks: hashes {v: value or owner, x: expires_at}, PEXPIRE only collects garbage --

#: KEYS: value. ARGV: value, expires_at, pexpire_ms.
PUT = """
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'x', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
"""

#: KEYS: value. ARGV: value, expires_at, pexpire_ms, now. Returns what the key holds.
SETDEFAULT = """
local held = redis.call('HMGET', KEYS[1], 'v', 'x')
if held[1] and tonumber(held[2]) > tonumber(ARGV[4]) then return held[1] end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'x', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return ARGV[1]
"""

#: KEYS: value or lock. ARGV: expected. Compare-and-delete (expired or not, like the others).
DELETE_IF = """
if redis.call('HGET', KEYS[1], 'v') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

#: KEYS: lock. ARGV: owner, expires_at, pexpire_ms, now. The holder may take it again (extend).
ACQUIRE = """
local held = redis.call('HMGET', KEYS[1], 'v', 'x')
if held[1] and held[1] ~= ARGV[1] and tonumber(held[2]) > tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'x', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# -- sliding windows: one sorted set of event times per key ---------------------------------------

#: KEYS: windows. ARGV: now, count, forget_at_or_before, pexpire_ms, token, then (window, most)
#: pairs. Returns '0' when recorded for every key, else the wait in seconds (as text).
RESERVE = """
local now, count, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[5]
if count > 0 and redis.call('ZSCORE', KEYS[1], token .. ':1') then return '0' end
local wait = 0
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[3])
  for i = 6, #ARGV, 2 do
    local window, most = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
    local after = '(' .. string.format('%.17g', now - window)
    local excess = redis.call('ZCOUNT', key, after, '+inf') + count - most
    if excess > 0 then
      local nth = redis.call(
        'ZRANGEBYSCORE', key, after, '+inf', 'WITHSCORES', 'LIMIT', excess - 1, 1)
      wait = math.max(wait, tonumber(nth[2]) + window - now)
    end
  end
end
if wait > 0 then return string.format('%.17g', wait) end
for _, key in ipairs(KEYS) do
  for n = 1, count do redis.call('ZADD', key, ARGV[1], token .. ':' .. n) end
  redis.call('PEXPIRE', key, ARGV[4])
end
return '0'
"""

# -- the inbox: a hash per record; `running` (key -> lease_until), `done` (key -> created_at) ------

#: KEYS: record, running, done. ARGV: now, token, key, owner, lease_until, then the new record's
#: field/value pairs. Returns {created 1/0, HGETALL}. A running record found is marked pushed;
#: every claim that finds the record (but a repeat of this very call) counts a retry.
INBOX_CLAIM = _lua("""
local record, running, done = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', record) == 0 then
  redis.call('HSET', record, unpack(ARGV, 6))
  local state, lease, created = unpack(
    redis.call('HMGET', record, 'state', 'lease_until', 'created_at'))
  if state == '$RUNNING' then redis.call('ZADD', running, lease, ARGV[3])
  elseif state == '$DONE' then redis.call('ZADD', done, created, ARGV[3]) end
  return {1, redis.call('HGETALL', record)}
end
local state, lease, claim = unpack(redis.call('HMGET', record, 'state', 'lease_until', 'claim'))
if claim == ARGV[2] then return {1, redis.call('HGETALL', record)} end
redis.call('HINCRBY', record, 'retries', 1)
if state == '$RUNNING' and tonumber(lease) <= tonumber(ARGV[1]) then
  redis.call(
    'HSET', record, 'owner', ARGV[4], 'lease_until', ARGV[5], 'claim', ARGV[2], 'pushed', '1')
  redis.call('HINCRBY', record, 'attempts', 1)
  redis.call('ZADD', running, ARGV[5], ARGV[3])
  return {1, redis.call('HGETALL', record)}
end
if state == '$RUNNING' then redis.call('HSET', record, 'pushed', '1') end
return {0, redis.call('HGETALL', record)}
""")

#: KEYS: record, running, done. ARGV: key, owner, pushed, has_reply, reply, passive (1 for a
#: passive reply, which a record marked pushed refuses), finished_at.
INBOX_FINISH = _lua("""
local owner, state, created, pushed = unpack(
  redis.call('HMGET', KEYS[1], 'owner', 'state', 'created_at', 'pushed'))
if owner ~= ARGV[2] or state ~= '$RUNNING' then return 0 end
if ARGV[6] == '1' and pushed == '1' then return 0 end
redis.call('HSET', KEYS[1], 'state', '$DONE', 'pushed', ARGV[3], 'finished_at', ARGV[7])
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'reply', ARGV[5])
else redis.call('HDEL', KEYS[1], 'reply') end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], created, ARGV[1])
return 1
""")

#: KEYS: running, then records. ARGV: owner, lease_until, then the records' keys.
INBOX_RENEW = _lua("""
for i = 2, #KEYS do
  local owner, state = unpack(redis.call('HMGET', KEYS[i], 'owner', 'state'))
  if owner == ARGV[1] and state == '$RUNNING' then
    redis.call('HSET', KEYS[i], 'lease_until', ARGV[2])
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i + 1])
  end
end
""")

#: KEYS: running, record. ARGV: from owner, to owner, lease_until, key. Returns 1 if moved.
INBOX_TRANSFER = _lua("""
local owner, state = unpack(redis.call('HMGET', KEYS[2], 'owner', 'state'))
if owner == ARGV[1] and state == '$RUNNING' then
  redis.call('HSET', KEYS[2], 'owner', ARGV[2], 'lease_until', ARGV[3])
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
  return 1
end
return 0
""")

#: KEYS: running. ARGV: now, owner, lease_until, limit, token, record key prefix.
#: Returns the HGETALL of each record taken over, oldest lease first.
INBOX_EXPIRED = _lua("""
local now, taken = tonumber(ARGV[1]), {}
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[4])) do
  local record = ARGV[6] .. key
  local state, lease = unpack(redis.call('HMGET', record, 'state', 'lease_until'))
  if state ~= '$RUNNING' then
    redis.call('ZREM', KEYS[1], key)
  elseif tonumber(lease) > now then
    redis.call('ZADD', KEYS[1], lease, key)
  else
    redis.call('HSET', record, 'owner', ARGV[2], 'lease_until', ARGV[3], 'claim', ARGV[5])
    redis.call('HINCRBY', record, 'attempts', 1)
    redis.call('ZADD', KEYS[1], ARGV[3], key)
    taken[#taken + 1] = redis.call('HGETALL', record)
  end
end
return taken
""")

#: KEYS: done. ARGV: created before (exclusive), batch size, record key prefix. Returns how many.
INBOX_PURGE = """
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, ARGV[2])
for _, key in ipairs(keys) do
  redis.call('DEL', ARGV[3] .. key)
  redis.call('ZREM', KEYS[1], key)
end
return #keys
"""

# -- the outbox: a hash per item; `pending` (id -> next_at) holds every pending item ------------

#: KEYS: item, pending. ARGV: id, token, then the item's field/value pairs. Returns 1 if added.
OUTBOX_ADD = _lua("""
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HGET', KEYS[1], 'token') == ARGV[2] and 1 or 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
local state, next_at = unpack(redis.call('HMGET', KEYS[1], 'state', 'next_at'))
if state == '$PENDING' then redis.call('ZADD', KEYS[2], next_at, ARGV[1]) end
return 1
""")

#: KEYS: item. ARGV: now, owner, lease_until, token. Returns HGETALL, or nil if not claimable.
OUTBOX_CLAIM = _lua("""
local state, lease, token = unpack(redis.call('HMGET', KEYS[1], 'state', 'lease_until', 'lease'))
if state ~= '$PENDING' then return false end
if tonumber(lease) > tonumber(ARGV[1]) and token ~= ARGV[4] then return false end
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'lease_until', ARGV[3], 'lease', ARGV[4])
return redis.call('HGETALL', KEYS[1])
""")

#: KEYS: pending. ARGV: now, owner, lease_until, limit, token, item key prefix.
#: Leases up to `limit` due, unleased items in (next_at, created_at, id) order; returns HGETALLs.
OUTBOX_DUE = _lua("""
local now, limit, batch, offset, found = tonumber(ARGV[1]), tonumber(ARGV[4]), 100, 0, {}
repeat
  local page = redis.call(
    'ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', offset, batch)
  for i = 1, #page, 2 do
    local next_at = tonumber(page[i + 1])
    if #found >= limit and next_at > found[#found].next_at then page = {} break end
    local item = ARGV[6] .. page[i]
    local state, lease, token, created = unpack(
      redis.call('HMGET', item, 'state', 'lease_until', 'lease', 'created_at'))
    if state == '$PENDING' and (tonumber(lease) <= now or token == ARGV[5]) then
      found[#found + 1] = {key = item, next_at = next_at, created = tonumber(created), id = page[i]}
    end
  end
  offset = offset + batch
until #page < 2 * batch
table.sort(found, function(a, b)
  if a.next_at ~= b.next_at then return a.next_at < b.next_at end
  if a.created ~= b.created then return a.created < b.created end
  return a.id < b.id
end)
local leased = {}
for i = 1, math.min(limit, #found) do
  redis.call('HSET', found[i].key, 'owner', ARGV[2], 'lease_until', ARGV[3], 'lease', ARGV[5])
  leased[i] = redis.call('HGETALL', found[i].key)
end
return leased
""")

#: KEYS: item. ARGV: owner, lease_until. Renews the lease if `owner` holds the pending item.
OUTBOX_HOLD = _lua("""
local owner, state = unpack(redis.call('HMGET', KEYS[1], 'owner', 'state'))
if owner ~= ARGV[1] or state ~= '$PENDING' then return 0 end
redis.call('HSET', KEYS[1], 'lease_until', ARGV[2])
return 1
""")

#: KEYS: item, pending, finished. ARGV: id, now. A dead item becomes pending, due now.
OUTBOX_RETRY = _lua("""
if redis.call('HGET', KEYS[1], 'state') ~= '$DEAD' then return 0 end
redis.call('HSET', KEYS[1], 'state', '$PENDING', 'attempts', '0', 'next_at', ARGV[2],
           'lease_until', '0.0', 'lease', '')
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
""")

#: KEYS: item, pending, finished. ARGV: id, now. Deletes a dead item, or an unleased pending one.
OUTBOX_DROP = _lua("""
local state, lease = unpack(redis.call('HMGET', KEYS[1], 'state', 'lease_until'))
if state == '$DEAD' or (state == '$PENDING' and tonumber(lease) <= tonumber(ARGV[2])) then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 1
end
return 0
""")

#: KEYS: item, pending, finished. ARGV: id, owner, then the progress field/value pairs (state,
#: next_at among them). Stores them only if `owner` holds the item; a finished item is indexed
#: in `finished` by its created_at, for purging.
OUTBOX_SAVE = _lua("""
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
local state, next_at = unpack(redis.call('HMGET', KEYS[1], 'state', 'next_at'))
if state == '$PENDING' then redis.call('ZADD', KEYS[2], next_at, ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZADD', KEYS[3], redis.call('HGET', KEYS[1], 'created_at'), ARGV[1])
end
return 1
""")

#: Every script, by the name RedisStore runs it under.
ALL = {
    "put": PUT,
    "setdefault": SETDEFAULT,
    "delete_if": DELETE_IF,
    "acquire": ACQUIRE,
    "reserve": RESERVE,
    "inbox_claim": INBOX_CLAIM,
    "inbox_finish": INBOX_FINISH,
    "inbox_renew": INBOX_RENEW,
    "inbox_transfer": INBOX_TRANSFER,
    "inbox_expired": INBOX_EXPIRED,
    "inbox_purge": INBOX_PURGE,
    "outbox_add": OUTBOX_ADD,
    "outbox_claim": OUTBOX_CLAIM,
    "outbox_due": OUTBOX_DUE,
    "outbox_save": OUTBOX_SAVE,
    "outbox_hold": OUTBOX_HOLD,
    "outbox_retry": OUTBOX_RETRY,
    "outbox_drop": OUTBOX_DROP,
}
