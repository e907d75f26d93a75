-- Returns the largest count of values that unpack() can push on this
-- server's Lua stack, found by binary search. The broker uses half of it
-- as its batch size, leaving room for the other arguments of a call.

local nothing = {}
local low, high = 1, 1000000

while low < high do
  local middle = math.floor((low + high + 1) / 2)
  if pcall(unpack, nothing, 1, middle) then
    low = middle
  else
    high = middle - 1
  end
end

return low
