package receipts

import (
	"strings"
	"sync"
)

// headerCacheCap bounds the parsed headers kept. Apple signs with a few
// leaf certificates at a time, so a handful of entries serve every payload.
// Only a header whose chain and signature verified is kept (keep), so a
// caller minting headers, however big, cannot fill the cache.
const headerCacheCap = 256

// parsedHeader is a protected header that parsed, with its chain's
// certificates parsed: the same bytes always parse the same way, so this
// skips work, never a check (alg, profile, OIDs, chain signatures by the
// chain cache, validity and the JWS signature all still run per payload).
type parsedHeader struct {
	alg   string
	x5c   [][]byte
	chain *chain // root not chosen yet
}

// headerCache maps the exact base64url header segment to its parse.
type headerCache struct {
	mu sync.RWMutex
	m  map[string]*parsedHeader
}

func (c *headerCache) get(segment string) *parsedHeader {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[segment]
}

func (c *headerCache) put(segment string, h *parsedHeader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*parsedHeader)
	}
	if len(c.m) >= headerCacheCap {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[strings.Clone(segment)] = h
}

// parse is parseJWS with the header's parse remembered. A header not seen
// before comes back as fresh, for keep once its JWS has verified; the
// cache answers every input as parseJWS and parseChain would.
func (c *headerCache) parse(s string) (j *jws, ch *chain, fresh *parsedHeader, err error) {
	if len(s) <= maxJWSBytes {
		if seg, _, ok := strings.Cut(s, "."); ok {
			if h := c.get(seg); h != nil {
				j, err := parseBody(s, h)
				if err != nil {
					return nil, nil, nil, err
				}
				cc := *h.chain
				return j, &cc, nil, nil
			}
		}
	}
	if j, err = parseJWS(s); err != nil {
		return nil, nil, nil, err
	}
	if len(j.x5c) != 3 {
		return j, nil, nil, nil
	}
	if ch, err = parseChain(j.x5c); err != nil {
		return j, nil, nil, nil // the caller parses again and reports it
	}
	cc := *ch
	return j, &cc, &parsedHeader{alg: j.alg, x5c: j.x5c, chain: ch}, nil
}

// keep remembers the header of s, which verified, as parsed.
func (c *headerCache) keep(s string, h *parsedHeader) {
	if h == nil {
		return
	}
	seg, _, _ := strings.Cut(s, ".")
	c.put(seg, h)
}

// parseBody decodes the payload and signature of a JWS whose header is
// known, with parseJWS's shape rules.
func parseBody(s string, h *parsedHeader) (*jws, error) {
	parts := strings.SplitN(s, ".", 4)
	if len(parts) != 3 {
		return nil, newError(CodeMalformed, nil, "jws must have 3 dot-separated parts")
	}
	var raw [2][]byte
	for i, p := range parts[1:] {
		b, err := decodeSegment(p)
		if err != nil {
			return nil, newError(CodeMalformed, err, "jws part %d is not base64url", i+2)
		}
		raw[i] = b
	}
	return &jws{alg: h.alg, x5c: h.x5c, signingStr: parts[0] + "." + parts[1], payload: raw[0], signature: raw[1]}, nil
}
