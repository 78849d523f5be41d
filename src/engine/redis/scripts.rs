//! The Lua scripts of the Redis engine. Each touches only keys of one channel, or the
//! two session-entry keys (one hash tag), so it runs atomically on one shard or slot.
//! (Channel keys are hash tagged in cluster mode.)

use std::sync::LazyLock;

use redis::Script;

/// Ensures the stream meta hash has an epoch (a new epoch also drops any stream left
/// from before, so offsets and entry ids stay in step) and refreshes its expiry.
/// Shared prologue of the scripts below; leaves `epoch` and `top` set.
macro_rules! meta_prologue {
    () => {
        r#"
local epoch = redis.call('hget', KEYS[2], 'e')
if not epoch then
  epoch = META_EPOCH
  redis.call('hset', KEYS[2], 'e', epoch)
  redis.call('del', KEYS[1])
end
"#
    };
}

/// KEYS: stream, stream meta, idempotency result key ("" = none).
/// ARGV: publication, history size (0 = no history), stream ttl s, PUB/SUB channel,
/// meta ttl s (0 = none), epoch for a new stream, idempotency ttl s (0 = none).
/// Returns {offset, epoch, duplicate}.
pub(super) static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"
if ARGV[7] ~= '0' then
  local r = redis.call('hmget', KEYS[3], 's', 'e')
  if r[1] then return {{tonumber(r[1]), r[2], 1}} end
end
if ARGV[2] == '0' then
  redis.call('publish', ARGV[4], 'p0::' .. ARGV[1])
  if ARGV[7] ~= '0' then
    redis.call('hset', KEYS[3], 's', 0, 'e', '')
    redis.call('expire', KEYS[3], ARGV[7])
  end
  return {{0, '', 0}}
end
local META_EPOCH = ARGV[6]
{prologue}
local top = redis.call('hincrby', KEYS[2], 's', 1)
if ARGV[5] ~= '0' then redis.call('expire', KEYS[2], ARGV[5]) end
redis.call('xadd', KEYS[1], 'MAXLEN', ARGV[2], top .. '-0', 'd', ARGV[1])
redis.call('expire', KEYS[1], ARGV[3])
redis.call('publish', ARGV[4], 'p' .. top .. ':' .. epoch .. ':' .. ARGV[1])
if ARGV[7] ~= '0' then
  redis.call('hset', KEYS[3], 's', top, 'e', epoch)
  redis.call('expire', KEYS[3], ARGV[7])
end
return {{top, epoch, 0}}
"#,
        prologue = meta_prologue!()
    ))
});

/// KEYS: stream meta. ARGV: meta ttl s, epoch for a new stream. Returns {top, epoch}.
pub(super) static POSITION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local epoch = redis.call('hget', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[2]
  redis.call('hset', KEYS[1], 'e', epoch)
end
if ARGV[1] ~= '0' then redis.call('expire', KEYS[1], ARGV[1]) end
return {tonumber(redis.call('hget', KEYS[1], 's') or '0'), epoch}
"#,
    )
});

/// KEYS: stream, stream meta. ARGV: meta ttl s, epoch for a new stream, reverse (0/1),
/// since offset ("" = from the start or end), limit (-1 = all, 0 = none).
/// Returns {top, epoch, id of the oldest retained entry or false, entries}.
pub(super) static HISTORY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"
local META_EPOCH = ARGV[2]
{prologue}
if ARGV[1] ~= '0' then redis.call('expire', KEYS[2], ARGV[1]) end
local top = tonumber(redis.call('hget', KEYS[2], 's') or '0')
local first = redis.call('xrange', KEYS[1], '-', '+', 'COUNT', 1)
local first_id = false
if #first > 0 then first_id = first[1][1] end
local limit = tonumber(ARGV[5])
local entries = {{}}
if limit ~= 0 then
  local args
  if ARGV[3] == '1' then
    local hi = '+'
    if ARGV[4] ~= '' then hi = '(' .. ARGV[4] .. '-0' end
    args = {{'xrevrange', KEYS[1], hi, '-'}}
  else
    local lo = '-'
    if ARGV[4] ~= '' then lo = '(' .. ARGV[4] .. '-0' end
    args = {{'xrange', KEYS[1], lo, '+'}}
  end
  if limit > 0 then
    table.insert(args, 'COUNT')
    table.insert(args, limit)
  end
  entries = redis.call(unpack(args))
end
return {{top, epoch, first_id, entries}}
"#,
        prologue = meta_prologue!()
    ))
});

/// KEYS: presence data hash, presence expiry zset. ARGV: client, info, expires at
/// (unix s), key ttl s.
pub(super) static PRESENCE_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
redis.call('zadd', KEYS[2], ARGV[3], ARGV[1])
redis.call('expire', KEYS[1], ARGV[4])
redis.call('expire', KEYS[2], ARGV[4])
return 1
"#,
    )
});

/// KEYS: presence data hash, presence expiry zset. ARGV: client.
pub(super) static PRESENCE_REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('hdel', KEYS[1], ARGV[1])
redis.call('zrem', KEYS[2], ARGV[1])
return 1
"#,
    )
});

/// KEYS: presence data hash, presence expiry zset. ARGV: now (unix s). Drops entries
/// whose expiry passed (their node stopped refreshing them), then returns the rest.
pub(super) static PRESENCE_GET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local expired = redis.call('zrangebyscore', KEYS[2], '0', ARGV[1])
for i = 1, #expired do
  redis.call('hdel', KEYS[1], expired[i])
end
if #expired > 0 then
  redis.call('zremrangebyscore', KEYS[2], '0', ARGV[1])
end
return redis.call('hgetall', KEYS[1])
"#,
    )
});

/// KEYS: session entries hash, expiry sorted set. ARGV: id, body, expire_at (0 = never).
pub(super) static SESSION_PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == '0' then
  redis.call('zrem', KEYS[2], ARGV[1])
else
  redis.call('zadd', KEYS[2], ARGV[3], ARGV[1])
end
return 1
"#,
    )
});

/// KEYS: session entries hash, expiry sorted set. ARGV: id.
pub(super) static SESSION_REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('hdel', KEYS[1], ARGV[1])
redis.call('zrem', KEYS[2], ARGV[1])
return 1
"#,
    )
});

/// KEYS: session entries hash, expiry sorted set. ARGV: now (Unix seconds).
/// Drops entries expiring at or before now, at most 1000 per call; returns how many.
pub(super) static SESSION_SWEEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local dead = redis.call('zrangebyscore', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 1000)
for _, id in ipairs(dead) do
  redis.call('hdel', KEYS[1], id)
  redis.call('zrem', KEYS[2], id)
end
return #dead
"#,
    )
});
