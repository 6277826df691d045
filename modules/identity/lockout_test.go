package identity_test

import (
	"sync"
	"testing"

	"github.com/switchboard-cloud/switchboard/app/apptest"
	"github.com/switchboard-cloud/switchboard/modules/identity"
)

// TestConcurrentGuessesLockAtTheLimit: many wrong passwords at once still lock the account
// after exactly the configured number of failures counted, never letting extra guesses through
// a stale count: once locked, even the right password is refused.
func TestConcurrentGuessesLockAtTheLimit(t *testing.T) {
	for _, d := range apptest.Dialects(t) {
		t.Run(string(d), func(t *testing.T) {
			e := apptest.New(t, d, apptest.Options{Env: map[string]string{"SWITCHBOARD_LOGIN_MAX_FAILURES": "4"}})
			var wg sync.WaitGroup
			statuses := make(chan int, 12)
			for i := 0; i < 12; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					statuses <- e.Anon().Do("POST", "/api/v1/auth/login", map[string]any{"email": "agent1@acme.test", "password": "wrong-password-x"}).Status
				}()
			}
			wg.Wait()
			close(statuses)
			for s := range statuses {
				if s != 401 && s != 429 {
					t.Fatalf("a wrong guess got %d", s)
				}
			}
			e.Anon().Do("POST", "/api/v1/auth/login", map[string]any{"email": "agent1@acme.test", "password": apptest.Password}).Want(429)
			var u identity.User
			if err := e.App.DB.Gorm().Where("email = ?", "agent1@acme.test").Take(&u).Error; err != nil {
				t.Fatal(err)
			}
			if u.LockedUntil == nil {
				t.Fatal("account not locked")
			}
		})
	}
}

// TestInvitationAcceptCountsFailures: guessing an existing account's password through an
// invitation counts toward the same lockout as the login form.
func TestInvitationAcceptCountsFailures(t *testing.T) {
	e := apptest.New(t, "sqlite", apptest.Options{Env: map[string]string{"SWITCHBOARD_LOGIN_MAX_FAILURES": "3"}})
	owner := e.Login("owner@acme.test")
	owner.Do("POST", "/api/v1/invitations", map[string]any{"email": "owner@globex.test", "role": "agent"}).Want(201)
	tok := apptest.Token(e.Mail("owner@globex.test", "/invite/"))
	for i := 0; i < 3; i++ {
		e.Anon().Do("POST", "/api/v1/invitations/"+tok+"/accept", map[string]any{"password": "wrong-password-x"}).Want(401)
	}
	e.Anon().Do("POST", "/api/v1/invitations/"+tok+"/accept", map[string]any{"password": apptest.Password}).Want(429)
	e.Anon().Do("POST", "/api/v1/auth/login", map[string]any{"email": "owner@globex.test", "password": apptest.Password}).Want(429)
}
