-- INFO whitelist as metrics for redis_exporter's -script option:
--
--   prometheus-redis-exporter --redis.addr redis://HOST:6379 --script whitelist.lua
--
-- The exporter runs this with EVAL (EVAL_RO with --lua-script-read-only) on its
-- own connection at every scrape and publishes each returned pair as
-- redis_script_values{key="<name>"} <value>. It accepts only bulk strings that
-- parse as numbers, and one bad value fails the whole scrape, so every value is
-- returned as the text INFO printed, and only when it is plainly a number.
--
-- Names (README.md beside this file):
--   whitelist_<field>               every numeric field, named as in INFO
--   whitelist_group_<key>:<group>   every numeric key=value of a group's line
--                                   (entries, hits, users, ...)
--   whitelist_mode:<mode>           1 for the mode in force, 0 for the others
--   whitelist_when_empty:<setting>  the same for whitelist.when-empty
-- Other text fields are left out: whitelist_last_denied_addr would make a new
-- series for every denied address (its time is exported).
-- Without the module, INFO whitelist is empty and so is the result.

local states = {
    whitelist_mode = { 'enforce', 'monitor', 'off' },
    whitelist_when_empty = { 'allow', 'deny' },
}

-- Only what the exporter's float parser takes as well: an address such as
-- 10.0.0.1 or a word such as "inf" is not a number here.
local function numeric(v)
    return string.match(v, '^%-?%d+$')
        or string.match(v, '^%-?%d+%.%d+$')
        or string.match(v, '^%-?%d+%.?%d*[eE][%+%-]?%d+$')
end

local out = {}
local function put(key, value)
    out[#out + 1] = key
    out[#out + 1] = value
end

local info = redis.call('INFO', 'whitelist')
for line in string.gmatch(info, '[^\r\n]+') do
    local name, value = string.match(line, '^(whitelist_[%w_]+):(.*)$')
    if name then
        local group = string.match(name, '^whitelist_group_([%w_]+)$')
        if group and string.find(value, '=', 1, true) then
            for k, v in string.gmatch(value, '([%w_]+)=([^,]*)') do
                if numeric(v) then
                    put('whitelist_group_' .. k .. ':' .. group, v)
                end
            end
        elseif numeric(value) then
            put(name, value)
        elseif states[name] then
            local known = false
            for _, state in ipairs(states[name]) do
                put(name .. ':' .. state, state == value and '1' or '0')
                known = known or state == value
            end
            -- A value this script does not know yet still shows, as 1.
            if not known and string.match(value, '^[%w_%-]+$') then
                put(name .. ':' .. value, '1')
            end
        end
    end
end
return out
