package route

import (
	"context"

	"github.com/verigate/verigate/verify"
)

// Defaults is the built-in safe routing alone, for wiring without a
// configuration: an Engine with an empty Config and no signals but the
// client's roaming hint. Numbers that bill the caller (premium rate, shared
// cost, UAN) are refused; SMS to a fixed line is refused; `auto` calls
// fixed lines and roaming numbers and texts the rest, with the other
// channel as fallback.
type Defaults struct{}

var _ verify.Router = Defaults{}

// defaultEngine is immutable after init: an Engine over the zero Config.
var defaultEngine = func() *Engine {
	e, err := NewEngine(Config{}, Deps{})
	if err != nil {
		panic("route: the zero Config does not validate: " + err.Error())
	}
	return e
}()

// Route implements verify.Router.
func (Defaults) Route(ctx context.Context, r verify.RouteRequest) (verify.Route, error) {
	return defaultEngine.Route(ctx, r)
}
