-- Dispatch script of the melodramatiq Redis broker.
--
-- One call runs one broker command atomically, on the key layout that
-- Python Dramatiq's Redis broker uses, so Node and Python processes can
-- share queues. Every call first records the caller's heartbeat.
--
-- KEYS[1]   namespace, e.g. "dramatiq"
-- ARGV[1]   command: enqueue, fetch, ack, nack, requeue, purge or qsize
-- ARGV[2]   caller's clock, integer UNIX ms
-- ARGV[3]   queue name, <q> or <q>.DQ
-- ARGV[4]   caller's broker id
-- ARGV[5]   heartbeat timeout in ms (a broker silent for longer is dead)
-- ARGV[6]   dead message TTL in ms (older dead letters are deleted)
-- ARGV[7]   "1" to run maintenance before the command, else "0"
-- ARGV[8]   maximum number of values handed to one unpack() call
-- ARGV[9..] command arguments
--
-- The script builds key names itself instead of declaring them in KEYS,
-- as Python's does, so it needs a single Redis instance (no cluster).

local namespace = KEYS[1]
local command = ARGV[1]
local now = ARGV[2]
local queue_name = ARGV[3]
local broker_id = ARGV[4]
local heartbeat_timeout = tonumber(ARGV[5])
local dead_message_ttl = tonumber(ARGV[6])
local run_maintenance = ARGV[7] == "1"
local batch_size = tonumber(ARGV[8])

local function canonical_name(name)
  local suffix = string.sub(name, -3)
  if suffix == ".DQ" or suffix == ".XQ" then
    return string.sub(name, 1, -4)
  end
  return name
end

local function acks_key(owner_id, queue)
  return namespace .. ":__acks__." .. owner_id .. "." .. queue
end

local canonical = canonical_name(queue_name)
local queue_key = namespace .. ":" .. queue_name
local messages_key = queue_key .. ".msgs"
local own_acks_key = acks_key(broker_id, queue_name)
local dead_key = namespace .. ":" .. canonical .. ".XQ"
local dead_messages_key = dead_key .. ".msgs"
local heartbeats_key = namespace .. ":__heartbeats__"

-- Lua's unpack() fails past a stack limit, so long argument lists go to
-- Redis in slices of at most batch_size values.
local function call_in_batches(redis_command, key, values)
  for first = 1, #values, batch_size do
    local last = math.min(first + batch_size - 1, #values)
    redis.call(redis_command, key, unpack(values, first, last))
  end
end

-- KEYS takes a glob pattern; a namespace may contain glob characters.
local function escape_glob(text)
  return (string.gsub(text, "([%*%?%[%]\\])", "\\%1"))
end

-- Brokers whose heartbeat is older than the timeout are dead: their
-- unacked messages of this queue whose bodies still exist go back to the
-- tail of the queue, and a dead broker without any acks set left is
-- forgotten.
local function recover_dead_brokers()
  local cutoff = tonumber(now) - heartbeat_timeout
  local dead_ids = redis.call("zrangebyscore", heartbeats_key, "-inf", cutoff)

  for _, dead_id in ipairs(dead_ids) do
    local dead_acks_key = acks_key(dead_id, queue_name)
    for _, message_id in ipairs(redis.call("smembers", dead_acks_key)) do
      if redis.call("hexists", messages_key, message_id) == 1 then
        redis.call("rpush", queue_key, message_id)
      end
    end
    redis.call("del", dead_acks_key)

    local remaining = redis.call("keys", escape_glob(namespace .. ":__acks__." .. dead_id) .. "*")
    if #remaining == 0 then
      redis.call("zrem", heartbeats_key, dead_id)
    end
  end
end

local function expire_dead_letters()
  local cutoff = tonumber(now) - dead_message_ttl
  local expired = redis.call("zrangebyscore", dead_key, "-inf", cutoff)
  call_in_batches("zrem", dead_key, expired)
  call_in_batches("hdel", dead_messages_key, expired)
end

redis.call("zadd", heartbeats_key, now, broker_id)

if run_maintenance then
  recover_dead_brokers()
  expire_dead_letters()
end

if command == "enqueue" then
  local message_id = ARGV[9]
  redis.call("hset", messages_key, message_id, ARGV[10])
  redis.call("rpush", queue_key, message_id)
  return false

elseif command == "fetch" then
  -- Unlike Python's script, which returns only the bodies, this returns
  -- {ids, bodies}: the consumer acks by the id it popped, never by an id
  -- read from a body that may lack it or be undecodable.
  local wanted = math.min(tonumber(ARGV[9]), batch_size)
  local message_ids = {}
  while #message_ids < wanted do
    local message_id = redis.call("lpop", queue_key)
    if not message_id then
      break
    end
    message_ids[#message_ids + 1] = message_id
  end

  if #message_ids == 0 then
    return {}
  end

  redis.call("sadd", own_acks_key, unpack(message_ids))
  return { message_ids, redis.call("hmget", messages_key, unpack(message_ids)) }

elseif command == "ack" then
  local message_id = ARGV[9]
  if redis.call("srem", own_acks_key, message_id) == 1 then
    redis.call("hdel", messages_key, message_id)
  end
  return false

elseif command == "nack" then
  local message_id = ARGV[9]
  if redis.call("srem", own_acks_key, message_id) == 1 then
    local body = redis.call("hget", messages_key, message_id)
    if body then
      redis.call("zadd", dead_key, now, message_id)
      redis.call("hset", dead_messages_key, message_id, body)
      redis.call("hdel", messages_key, message_id)
    end
  end
  return false

elseif command == "requeue" then
  for index = 9, #ARGV do
    local message_id = ARGV[index]
    if redis.call("srem", own_acks_key, message_id) == 1 and redis.call("hexists", messages_key, message_id) == 1 then
      redis.call("rpush", queue_key, message_id)
    end
  end
  return false

elseif command == "purge" then
  redis.call("del", queue_key, own_acks_key, messages_key, dead_key, dead_messages_key)
  return false

elseif command == "qsize" then
  local base = namespace .. ":" .. canonical
  return redis.call("hlen", base .. ".msgs")
    + redis.call("hlen", base .. ".DQ.msgs")
    + redis.call("scard", acks_key(broker_id, canonical))
    + redis.call("scard", acks_key(broker_id, canonical .. ".DQ"))
end

return redis.error_reply("unknown dispatch command '" .. tostring(command) .. "'")
