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
// first. Twelve adds at once, two of them repeating a docid: each docid
// is taken once (the loser gets 42), and the firma documents and the
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
		default:
			t.Errorf("add %s (#%d): %v", ids[n], n, a)
		}
	}
	for _, id := range ids[:10] {
		if won[id] != 1 {
			t.Errorf("docid %s added %d times, want 1", id, won[id])
		}
	}
	ft, err := s.DB.FireTransaction(s.Ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := s.DB.Documents(s.Ctx, batch, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 10 || len(ft.DocIDs) != 10 {
		t.Fatalf("%d documents and docids %q, want 10 of each", len(docs), ft.DocIDs)
	}
	seen := map[string]bool{}
	for i, id := range ft.DocIDs {
		if id == "" || seen[id] || docs[i].Index != i {
			t.Errorf("document %d has docid %q (docids %q)", i, id, ft.DocIDs)
		}
		seen[id] = true
	}
}
