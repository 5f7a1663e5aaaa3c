-- Argo CD health check for jobwarden.io/JobSchedule.
--
-- Reads the status the operator writes (and spec.suspend, the user's switch):
--   phase               Active | Suspended | Completed | Invalid
--   health.state        Healthy | Degraded | Unhealthy (+ reason, message)
--   conditions[]        Valid, Ready
--   observedGeneration  the spec generation the status describes
--
-- Verdicts, first match wins:
--   Progressing  no status yet, or observedGeneration behind metadata.generation
--                (the operator has not judged the current spec)
--   Degraded     phase Invalid (message from the Valid condition)
--   Suspended    phase Suspended because the user set spec.suspend
--   Degraded     phase Suspended by the operator after suspendAfterFailures
--                (status.suspendedByOperator.suspended): a human must act
--   Degraded     health Unhealthy
--   Suspended    phase Suspended otherwise
--   Healthy      phase Active or Completed with health Healthy
--   Healthy      phase Active or Completed with health Degraded: the schedule
--                works and keeps running, some recent runs failed. Argo's
--                Degraded means broken and would fail syncs and waves for a
--                single failed run; the message starts with "Degraded:" so
--                it stays visible.
--   Progressing  no health verdict yet
--   Unknown      a phase or health this script does not know

local hs = {}

local function condition(status, ctype)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

-- The first non-empty string among the arguments.
local function first(...)
  local n = select("#", ...)
  for i = 1, n do
    local v = select(i, ...)
    if type(v) == "string" and v ~= "" then
      return v
    end
  end
  return nil
end

local function healthText(health)
  if health == nil then
    return nil
  end
  return first(health.message, health.reason)
end

local status = obj.status
if status == nil or next(status) == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
local observed = status.observedGeneration
if observed == nil or (generation ~= nil and observed < generation) then
  hs.status = "Progressing"
  if generation ~= nil then
    hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  else
    hs.message = "Waiting for the operator to observe the spec"
  end
  return hs
end

local phase = status.phase
local health = status.health or {}
local state = health.state
local valid = condition(status, "Valid")
local ready = condition(status, "Ready")

if phase == "Invalid" then
  hs.status = "Degraded"
  hs.message = first(valid and valid.message, healthText(health), valid and valid.reason)
    or "The JobSchedule is invalid"
  return hs
end

local userSuspended = obj.spec ~= nil and obj.spec.suspend == true

if phase == "Suspended" and userSuspended then
  hs.status = "Suspended"
  hs.message = "Suspended by spec.suspend"
  return hs
end

local byOperator = status.suspendedByOperator
if phase == "Suspended" and byOperator ~= nil and byOperator.suspended == true then
  hs.status = "Degraded"
  hs.message = "Suspended by the operator after failed runs: "
    .. (first(byOperator.message, byOperator.reason, healthText(health)) or "suspendAfterFailures reached")
    .. " (lift with a spec change or `kubectl jobwarden resume`)"
  return hs
end

if state == "Unhealthy" then
  hs.status = "Degraded"
  hs.message = first(healthText(health), ready and ready.message) or "The schedule's runs are failing"
  return hs
end

if phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = first(ready and ready.message, healthText(health)) or "Suspended"
  return hs
end

if phase == "Active" or phase == "Completed" then
  local done = "Active"
  if phase == "Completed" then
    done = "Completed"
  elseif first(status.nextRunTime) ~= nil then
    done = "Active, next run at " .. status.nextRunTime
  end
  if state == "Healthy" then
    hs.status = "Healthy"
    hs.message = done
    return hs
  end
  if state == "Degraded" then
    hs.status = "Healthy"
    hs.message = "Degraded: " .. (healthText(health) or "recent runs failed") .. " (" .. done .. ")"
    return hs
  end
  if state == nil then
    hs.status = "Progressing"
    hs.message = "Waiting for the operator's health verdict"
    return hs
  end
  hs.status = "Unknown"
  hs.message = "Unknown health state " .. tostring(state)
  return hs
end

if phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report a phase"
  return hs
end

hs.status = "Unknown"
hs.message = "Unknown phase " .. tostring(phase)
return hs
