package transaction

// DefaultMaxBody is max_request_bytes' default, the bound on a REST
// request body: base64 documents up to the largest batch a portal is
// normally allowed.
const DefaultMaxBody = 128 << 20
