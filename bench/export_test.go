package bench

// CheckLoopback exposes checkLoopback to the tests.
var CheckLoopback = checkLoopback
