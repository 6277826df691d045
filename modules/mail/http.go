package mail

import (
	"github.com/gofiber/fiber/v2"
	"github.com/hibiken/asynq"

	"github.com/switchboard-cloud/switchboard/internal/httpx"
	"github.com/switchboard-cloud/switchboard/internal/queue"
	"github.com/switchboard-cloud/switchboard/modules/access"
)

// Module exposes the outbox to the app: its jobs, and in development the mailbox page's API.
type Module struct {
	o          *Outbox
	devMailbox bool
}

// NewModule returns the mail module; devMailbox serves GET /dev/mailbox (only when no SMTP is
// configured and not in production: it shows every mail the platform sent).
func NewModule(o *Outbox, devMailbox bool) *Module {
	return &Module{o: o, devMailbox: devMailbox && o.DevMailbox()}
}

// Name identifies the module.
func (m *Module) Name() string { return "mail" }

// Routes registers the development mailbox when enabled.
func (m *Module) Routes(r *access.Router) {
	if !m.devMailbox {
		return
	}
	s := access.Public("Development mailbox: mails the platform would have sent (not in production)")
	s.Tag = "dev"
	r.Get("/dev/mailbox", s, m.mailbox)
}

func (m *Module) mailbox(c *fiber.Ctx) error {
	msgs, err := m.o.Recent(c.UserContext(), 100)
	if err != nil {
		return err
	}
	return c.JSON(httpx.List[Message]{Items: msgs})
}

// Jobs registers the outbox's handlers.
func (m *Module) Jobs(mux *asynq.ServeMux) { m.o.Jobs(mux) }

// Schedules lists the outbox's periodic tasks.
func (m *Module) Schedules() []queue.Schedule { return m.o.Schedules() }
