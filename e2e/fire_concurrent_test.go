package e2e_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/firma-cloud/firma/e2e/stack"
)

// TestFIReConcurrentAddDocument: addDocumentToBatch stores the document
// and its docid in one write, retried when another add of the batch came
// first. Twelve adds at once, two of them repeating a docid: no docid is
// taken twice (the loser gets 42), an add that lost every retry says so
// (FIRe's 500, "busy; retry": the clients add one at a time, so only a
// test meets it) and leaves nothing, and the firma documents and the
// docids stay one to one. Cost: 12 requests, no browser.
func TestFIReConcurrentAddDocument(t *testing.T) {
	s := stack.New(t, stack.Options{})
	e := newFire(t, s)
	citizen := s.Advanced(78901241, "Tomás", "Paralelo Ruiz")
	app := "appid=" + e.appID + "&subjectid=" + citizen
	config := javaProps(map[string]string{"redirectOkUrl": e.okURL, "redirectErrorUrl": e.errURL})
	a := e.post(e.client, "op=5&"+app+"&cop=sign&algorithm=SHA256withRSA&format=CAdES&config="+config)
	i := strings.Index(string(a.body), `"transactionid":"`)
	if a.status != 200 || i < 0 {
		t.Fatalf("createBatch: %v", a)
	}
	batch := strings.SplitN(string(a.body)[i+17:], `"`, 2)[0]

	ids := []string{"d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "d0", "d1"}
	answers := make([]answer, len(ids))
	var wg sync.WaitGroup
	for n, id := range ids {
		wg.Go(func() {
			answers[n] = e.post(e.client, "op=6&"+app+"&transactionid="+batch+"&docid="+id+"&dat="+b64(fmt.Appendf(nil, "documento %d", n))+"&config=")
		})
	}
	wg.Wait()
	won := map[string]int{}
	for n, a := range answers {
		switch {
		case a.status == 200 && string(a.body) == "true":
			won[ids[n]]++
		case a.status == 400:
			wantError(t, a, 400, 42)
		case a.status == 500 && strings.Contains(string(a.body), "busy"):
			wantError(t, a, 500, 500)
		default:
			t.Errorf("add %s (#%d): %v", ids[n], n, a)
		}
	}
	total := 0
	for _, id := range ids[:10] {
		if won[id] > 1 {
			t.Errorf("docid %s added %d times", id, won[id])
		}
		total += won[id]
	}
	if total == 0 {
		t.Fatal("no add went through")
	}
	ft, err := s.DB.FireTransaction(s.Ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := s.DB.Documents(s.Ctx, batch, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != total || len(ft.DocIDs) != total {
		t.Fatalf("%d documents and docids %q, want %d of each", len(docs), ft.DocIDs, total)
	}
	seen := map[string]bool{}
	for i, id := range ft.DocIDs {
		if won[id] != 1 || seen[id] || docs[i].Index != i {
			t.Errorf("document %d has docid %q (docids %q)", i, id, ft.DocIDs)
		}
		seen[id] = true
	}
}
