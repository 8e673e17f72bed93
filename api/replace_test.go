package api

import (
	"context"
	"sync"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/registry"
)

// Replace swaps the credentials an Auth and a StaffAuth admit while calls
// authenticate concurrently (firmad's SIGHUP reload): each call sees the
// old list or the new one, and StaffAuth keeps its operators. Run with
// -race to check the swap.
func TestReplaceCredentials(t *testing.T) {
	mustAuth := func(names ...string) *Auth {
		var ops []config.Operator
		for _, n := range names {
			ops = append(ops, config.Operator{Name: n, TokenSHA256: TokenSHA256("tok-" + n)})
		}
		a, err := NewAuth(ops)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	auditors := mustAuth("eva")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if name, ok := auditors.Authenticate(incomingBearer("tok-eva")); ok && name != "eva" {
					t.Errorf("eva's token authenticated %q", name)
				}
			}
		})
	}
	for i := range 200 {
		if i%2 == 0 {
			auditors.Replace(mustAuth("olga"))
		} else {
			auditors.Replace(mustAuth("eva", "olga"))
		}
	}
	wg.Wait()
	auditors.Replace(mustAuth("olga"))
	if _, ok := auditors.Authenticate(incomingBearer("tok-eva")); ok {
		t.Error("eva still admitted after her removal")
	}
	if name, ok := auditors.Authenticate(incomingBearer("tok-olga")); !ok || name != "olga" {
		t.Errorf("olga: %q %v", name, ok)
	}

	staff, err := NewStaffAuth(mustAuth("op"), []registry.StaffToken{{Name: "ruth", Role: "registrar", TokenSHA256: TokenSHA256("tok-ruth")}})
	if err != nil {
		t.Fatal(err)
	}
	next, err := NewStaffAuth(nil, []registry.StaffToken{{Name: "vic", Role: "video_agent", TokenSHA256: TokenSHA256("tok-vic")}})
	if err != nil {
		t.Fatal(err)
	}
	staff.Replace(next)
	if _, ok := staff.Staff(incomingBearer("tok-ruth")); ok {
		t.Error("ruth still admitted after the replace")
	}
	if st, ok := staff.Staff(incomingBearer("tok-vic")); !ok || st.Role != policy.VideoAgent {
		t.Errorf("vic: %+v %v", st, ok)
	}
	if st, ok := staff.Staff(incomingBearer("tok-op")); !ok || st.Role != policy.Administrator {
		t.Errorf("the operator after the replace: %+v %v", st, ok)
	}
}

func incomingBearer(token string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+token))
}
