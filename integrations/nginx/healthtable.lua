-- healthtable for nginx (libnginx-mod-http-lua): route each request to the
-- first available upstream of a chain, as the health table says now.
--
-- LuaJIT's FFI over libhealthtable.so.0's C ABI (healthtable.h). Each
-- worker opens the table and takes one handle per upstream once, in
-- init_worker_by_lua; per request, healthtable.balance(chain) is one FFI
-- call (healthtable_pick), which reads the table's shared memory directly:
-- no cache, no lock, no syscall, so a trip is seen by the very next request
-- of every worker. docs/nginx.md has the whole story.
--
--   init_worker_by_lua_block {
--     require("healthtable").init{
--       table = "gateway",
--       chains = { llm = { {name = "groq",   addr = "10.0.0.1:8080"},
--                          {name = "openai", addr = "10.0.0.2:8080"} } },
--     }
--   }
--   upstream llm { server 0.0.0.1; balancer_by_lua_block { require("healthtable").balance("llm") } }
--   log_by_lua_block { require("healthtable").report() }   -- optional

local ffi = require("ffi")
local balancer = require("ngx.balancer")

local ngx = ngx
local log, ERR, WARN, NOTICE = ngx.log, ngx.ERR, ngx.WARN, ngx.NOTICE

ffi.cdef[[
typedef struct healthtable_table healthtable_t;
typedef struct healthtable_handle_s { const void *cell_; } healthtable_handle_t;
typedef struct healthtable_reporter healthtable_reporter_t;
int healthtable_open(const char *name, healthtable_t **out);
void healthtable_close(healthtable_t *table);
const char *healthtable_last_error(void);
const char *healthtable_version(void);
int healthtable_handle(const healthtable_t *table, const char *provider,
                       healthtable_handle_t *out);
bool healthtable_is_healthy(const healthtable_t *table, healthtable_handle_t handle);
int healthtable_pick(const healthtable_t *table, const healthtable_handle_t *chain,
                     size_t n, int policy, void *out);
int healthtable_reporter_open(const char *name, healthtable_reporter_t **out);
void healthtable_reporter_close(healthtable_reporter_t *reporter);
bool healthtable_report_success(healthtable_reporter_t *reporter, const char *provider);
bool healthtable_report_failure(healthtable_reporter_t *reporter, const char *provider,
                                const char *reason, int cls, int64_t retry_after_ns);
]]

local POLICY = { panic = 0, none = 1 }
local CLASS = { timeout = 1, connect = 2, server = 3, rate_limited = 4, auth = 5,
                client = 6, other = 7 }

local M = {
  -- For tests and status pages: what this worker is running on.
  state = "uninitialized", -- "ok", "no-library", "no-table"
}

local lib          -- the ffi.load()ed library, or nil
local tbl          -- healthtable_t*, or nil until the table exists
local reporter     -- healthtable_reporter_t*, or nil
local chains = {}  -- name -> { n, handles (healthtable_handle_t[n]), peers = {{name, host, port}} }
local policy = POLICY.panic
local table_name

local function last_error()
  return ffi.string(lib.healthtable_last_error())
end

local function split_addr(addr)
  local host, port = addr:match("^(.+):(%d+)$")
  if not host then
    error("healthtable: upstream address '" .. tostring(addr) .. "' is not HOST:PORT", 3)
  end
  return host, tonumber(port)
end

-- Takes every chain's handles: once per worker, when the table opens.
local function take_handles()
  for name, chain in pairs(chains) do
    local handles = ffi.new("healthtable_handle_t[?]", chain.n)
    for i, peer in ipairs(chain.peers) do
      local rc = lib.healthtable_handle(tbl, peer.name, handles + (i - 1))
      if rc ~= 0 then
        error("healthtable: chain '" .. name .. "': " .. last_error(), 0)
      end
    end
    chain.handles = handles
  end
end

local function try_open()
  local out = ffi.new("healthtable_t*[1]")
  local rc = lib.healthtable_open(table_name, out)
  if rc ~= 0 then return false, last_error() end
  tbl = ffi.gc(out[0], lib.healthtable_close)
  take_handles()
  M.state = "ok"
  return true
end

--- Call from init_worker_by_lua. opts:
---   table    the table's name (required)
---   chains   { CHAIN = { {name = PROVIDER, addr = "HOST:PORT"}, ... } } (required)
---   library  path or name of the C library (default "libhealthtable.so.0")
---   policy   "panic" (default: route to the one whose window ends first
---            when none is available) or "none" (answer 502 instead)
---   retry    seconds between attempts to open a table that is missing
---            (default 1; the first upstream of each chain serves meanwhile)
---   report   true: report() sends upstream failures to the prober
function M.init(opts)
  assert(type(opts) == "table", "healthtable.init{table = ..., chains = ...}")
  assert(type(opts.table) == "string", "healthtable.init: table = NAME is required")
  assert(type(opts.chains) == "table", "healthtable.init: chains = {...} is required")
  table_name = opts.table
  policy = POLICY[opts.policy or "panic"]
  if not policy then
    error("healthtable.init: policy '" .. tostring(opts.policy) .. "' is not panic or none", 2)
  end
  for name, list in pairs(opts.chains) do
    local peers = {}
    for i, p in ipairs(list) do
      local host, port = split_addr(p.addr)
      peers[i] = { name = p.name, host = host, port = port }
    end
    if #peers == 0 then error("healthtable.init: chain '" .. name .. "' is empty", 2) end
    chains[name] = { n = #peers, peers = peers }
  end

  local ok, loaded = pcall(ffi.load, opts.library or "libhealthtable.so.0")
  if not ok then
    M.state = "no-library"
    log(ERR, "healthtable: cannot load ", opts.library or "libhealthtable.so.0", ": ", loaded,
        "; routing every chain to its first upstream")
    return
  end
  lib = loaded

  if opts.report then
    local out = ffi.new("healthtable_reporter_t*[1]")
    if lib.healthtable_reporter_open(table_name, out) ~= 0 then
      log(ERR, "healthtable: reporter: ", last_error())
    else
      reporter = ffi.gc(out[0], lib.healthtable_reporter_close)
    end
  end

  local opened, why = try_open()
  if opened then return end
  M.state = "no-table"
  log(WARN, "healthtable: ", why, "; routing every chain to its first upstream until it exists")
  local every = opts.retry or 1
  local function retry(premature)
    if premature or tbl then return end
    local now_ok = try_open()
    if now_ok then
      log(NOTICE, "healthtable: table '", table_name, "' opened; routing by it")
    else
      ngx.timer.at(every, retry)
    end
  end
  ngx.timer.at(every, retry)
end

--- The chain's chosen upstream for this request: its peer table
--- ({name, host, port}), or nil when the policy says route nowhere.
--- One FFI call, straight to shared memory.
function M.choose(chain_name)
  local chain = chains[chain_name]
  if not chain then return nil, "no chain '" .. tostring(chain_name) .. "'" end
  if not tbl then return chain.peers[1] end
  local i = lib.healthtable_pick(tbl, chain.handles, chain.n, policy, nil)
  if i < 0 then return nil, "no upstream of chain '" .. chain_name .. "' is available" end
  return chain.peers[i + 1]
end

--- Call from balancer_by_lua: sets the request's peer (502 when none).
function M.balance(chain_name)
  local peer, why = M.choose(chain_name)
  if not peer then
    log(ERR, "healthtable: ", why)
    return ngx.exit(502)
  end
  ngx.ctx.healthtable_provider = peer.name
  local ok, err = balancer.set_current_peer(peer.host, peer.port)
  if not ok then
    log(ERR, "healthtable: set_current_peer ", peer.host, ":", peer.port, ": ", err)
    return ngx.exit(500)
  end
end

-- An upstream status to a failure class (nil: not a failure).
local function classify(status)
  if status == 429 then return CLASS.rate_limited end
  if status == 401 or status == 403 then return CLASS.auth end
  if status >= 500 then return CLASS.server end
  return nil
end

--- Call from log_by_lua (with report = true): tells the prober about the
--- request's upstream failure (a 5xx, 429, 401/403, or no response).
--- One non-blocking datagram per failure; successes send nothing.
function M.report()
  if not reporter then return end
  local provider = ngx.ctx.healthtable_provider
  if not provider then return end
  -- The last attempt's status ("502" or "504, 200" after retries).
  local statuses = ngx.var.upstream_status
  if not statuses then return end
  local last = statuses:match("(%S+)$")
  local status = tonumber(last)
  local cls, reason
  if not status then
    cls, reason = CLASS.connect, "no response"
  else
    cls = classify(status)
    reason = "http " .. status
  end
  if not cls then return end
  local retry_ns = -1
  local hint = tonumber(ngx.var.upstream_http_retry_after)
  if hint then retry_ns = hint * 1e9 end
  lib.healthtable_report_failure(reporter, provider, reason, cls, retry_ns)
end

--- The library's version, or nil when it is not loaded.
function M.version()
  return lib and ffi.string(lib.healthtable_version()) or nil
end

return M
