package v1http

import (
	"net/http"
	"strconv"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/api/rest"
)

// RegisterMail mounts the REST route on mux:
//
//	operators (Authorization: Bearer <operator token>, or mTLS)
//	GET /v1/mail/outbox?to=&limit=     ListEmails
//
// Responses are the proto JSON of ListEmailsResponse; errors are
// application/problem+json.
func RegisterMail(mux rest.Router, s *api.MailService) {
	mux.HandleFunc("GET /v1/mail/outbox", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		req := &firmav1.ListEmailsRequest{To: q.Get("to")}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > api.MaxOutboxPage {
				writeProblem(w, invalidArg("limit", "must be a number from 0 to "+strconv.Itoa(api.MaxOutboxPage)))
				return
			}
			req.Limit = int32(n)
		}
		resp, err := s.ListEmails(callContext(r), req)
		if err != nil {
			writeProblem(w, err)
			return
		}
		writeResult(w, r, resp, nil)
	})
}
