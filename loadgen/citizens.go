package loadgen

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
)

// dniLetters are the check letters of a Spanish DNI, by number mod 23.
const dniLetters = "TRWAGMYFPDXBNJZSQVHLCKE"

// SandboxCitizens returns n sandbox citizens numbered from first: valid
// DNIs 7xxxxxxx with their check letter, mobiles +3471xxxxxxx, all with
// the given password.
func SandboxCitizens(first, n int, password string) []Citizen {
	out := make([]Citizen, n)
	for i := range out {
		num := 70000000 + first + i
		out[i] = Citizen{ID: fmt.Sprintf("%08d%c", num, dniLetters[num%23]),
			Mobile: fmt.Sprintf("+3471%07d", (first+i)%10000000), Password: password}
	}
	return out
}

// Enrol registers the citizens at the advanced level through node's
// public registry API, reusing its bulk CSV import (operator), then gives
// each an activation code (operator) and sets its password as the citizen
// does. Citizens imported earlier keep their registration and get a new
// code and the password again, so a run can reuse them. The password hash
// costs what the registry's argon2 settings say: a load test wants the
// light ones (docs/scale.md).
func Enrol(ctx context.Context, client *http.Client, node, operatorToken string, citizens []Citizen, workers int) error {
	if err := loopbackURL(node); err != nil {
		return err
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"id", "given_name", "surnames", "mobile", "email", "method"})
	for _, c := range citizens {
		w.Write([]string{c.ID, "Carga", "Prueba " + letters(c.ID), c.Mobile, "carga+" + c.ID + "@example.es", "in_person"})
	}
	w.Flush()
	cfg := &Config{Client: client}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, node+"/v1/registry/import", &buf)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	var rep struct {
		Created int `json:"created"`
		Bad     []struct {
			Line  int    `json:"line"`
			Error string `json:"error"`
		} `json:"bad"`
	}
	if err := cfg.do(req, http.StatusOK, &rep); err != nil {
		return fmt.Errorf("import citizens: %w", err)
	}
	if len(rep.Bad) > 0 {
		return fmt.Errorf("import citizens: line %d: %s", rep.Bad[0].Line, rep.Bad[0].Error)
	}
	if workers <= 0 {
		workers = 4
	}
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  = make(chan Citizen)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				if err := setPassword(ctx, cfg, node, operatorToken, c); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	for _, c := range citizens {
		next <- c
	}
	close(next)
	wg.Wait()
	return first
}

func setPassword(ctx context.Context, cfg *Config, node, operatorToken string, c Citizen) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, node+"/v1/registry/citizens/"+c.ID+"/activation", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	var conf struct {
		Code string `json:"activation_code"`
	}
	if err := cfg.do(req, http.StatusOK, &conf); err != nil {
		return fmt.Errorf("activation code for %s: %w", c.ID, err)
	}
	body, _ := json.Marshal(map[string]string{"id": c.ID, "activation_code": conf.Code, "password": c.Password})
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, node+"/v1/registry/password", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if err := cfg.do(req, http.StatusOK, nil); err != nil {
		return fmt.Errorf("password for %s: %w", c.ID, err)
	}
	return nil
}

// letters spells the digits of a DNI as letters: names hold no digits, and
// distinct surnames make the sandbox easier to read.
func letters(id string) string {
	b := make([]byte, 0, len(id))
	for _, r := range id {
		if r >= '0' && r <= '9' {
			b = append(b, byte('a'+r-'0'))
		}
	}
	if len(b) > 0 {
		b[0] -= 'a' - 'A'
	}
	return string(b)
}
