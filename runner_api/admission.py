"""Fair, atomic admission of queued jobs: one Lua script per dequeue, so concurrent workers on
many machines agree on who runs next.

Fairness: tenants are tried least-recently-served first (a global order in Redis, not per worker),
and serving a tenant moves it to the back. A tenant with a thousand queued jobs therefore delays
another tenant's first job by at most one job slot.
Admission: the head job of a tenant queue starts only if the tenant is under its concurrency limit
and every node it touches is unlocked; it takes the node locks in the same step. A job that has to
wait stays at the head of its queue with `waiting` saying why.
"""

from runner_api import store

DEQUEUE = """
local order = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, t in ipairs(order) do
  local qkey = 'rq:queue:tenant.' .. t
  while true do
    local jid = redis.call('LINDEX', qkey, 0)
    if not jid then break end
    local jkey = 'gpucloud:job:' .. jid
    if redis.call('HGET', jkey, 'status') ~= 'queued' then
      redis.call('LPOP', qkey)
    else
      local limit = tonumber(redis.call('HGET', 'gpucloud:tenant:' .. t, 'concurrency') or ARGV[2])
      local reason = false
      local nodes = cjson.decode(redis.call('HGET', jkey, 'nodes') or '[]')
      if redis.call('SCARD', 'gpucloud:running:' .. t) >= limit then
        reason = 'tenant ' .. t .. ' is at its concurrency limit (' .. limit .. ' running)'
      else
        for _, n in ipairs(nodes) do
          local holder = redis.call('GET', 'gpucloud:lock:node:' .. n)
          if holder and holder ~= jid then
            reason = 'node ' .. n .. ' is locked by job ' .. holder
            break
          end
        end
      end
      if not reason then
        local ttl = tonumber(redis.call('HGET', jkey, 'timeout') or '3600') + 600
        for _, n in ipairs(nodes) do
          redis.call('SET', 'gpucloud:lock:node:' .. n, jid, 'EX', ttl)
        end
        redis.call('LPOP', qkey)
        redis.call('SADD', 'gpucloud:running:' .. t, jid)
        redis.call('HSET', jkey, 'worker', ARGV[1], 'waiting', '')
        redis.call('SET', jkey .. ':alive', ARGV[1], 'EX', ARGV[3])
        redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), t)
        return {t, jid}
      end
      if redis.call('HGET', jkey, 'waiting') ~= reason then
        redis.call('HSET', jkey, 'waiting', reason)
      end
      break
    end
  end
end
return false
"""

RELEASE = """
local jkey = 'gpucloud:job:' .. ARGV[1]
local nodes = cjson.decode(redis.call('HGET', jkey, 'nodes') or '[]')
for _, n in ipairs(nodes) do
  local k = 'gpucloud:lock:node:' .. n
  if redis.call('GET', k) == ARGV[1] then redis.call('DEL', k) end
end
redis.call('SREM', 'gpucloud:running:' .. ARGV[2], ARGV[1])
redis.call('DEL', jkey .. ':alive')
redis.call('RPUSH', KEYS[1], 1)
redis.call('LTRIM', KEYS[1], -64, -1)
return 1
"""


class Admission:
    def __init__(self, redis, default_concurrency: int, admit_ttl: int = 60):
        self.redis = redis
        self.default_concurrency = default_concurrency
        self.admit_ttl = admit_ttl
        self._dequeue = redis.register_script(DEQUEUE)
        self._release = redis.register_script(RELEASE)

    def next_job(self, worker: str) -> tuple[str, str] | None:
        """(tenant, job id) of the next job to run, already holding its locks; None if none may start."""
        result = self._dequeue(keys=[store.FAIR_ORDER, store.FAIR_COUNTER],
                               args=[worker, self.default_concurrency, self.admit_ttl])
        return (result[0], result[1]) if result else None

    def release(self, tenant: str, job_id: str) -> None:
        self._release(keys=[store.WAKEUP], args=[job_id, tenant])

    def holders(self, nodes: list[str]) -> dict[str, str]:
        values = self.redis.mget([store.node_lock(n) for n in nodes]) if nodes else []
        return {n: v for n, v in zip(nodes, values, strict=True) if v}
