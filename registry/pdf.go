package registry

import (
	"bytes"
	"fmt"
	"time"

	"github.com/go-pdf/fpdf"
)

// PDF renders the registration confirmation, with the activation code,
// for the citizen to save or print. It can only be made while the code is
// in hand, at the end of the registration: the store keeps only its hash.
func (c *Confirmation) PDF() ([]byte, error) {
	if c == nil || c.Citizen == nil || c.ActivationCode == "" {
		return nil, fmt.Errorf("confirmation pdf: no activation code to print")
	}
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetTitle("Cl@ve registration confirmation", true)
	pdf.SetAuthor("Cl@ve Firma", true)
	pdf.SetCreationDate(c.Citizen.UpdatedAt)
	// The core fonts are cp1252; names such as "Núñez" need translating.
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	pdf.AddPage()
	pdf.SetFont("Helvetica", "B", 18)
	pdf.CellFormat(0, 12, tr("Cl@ve registration confirmation"), "", 1, "L", false, 0, "")
	pdf.Ln(4)

	pdf.SetFont("Helvetica", "", 12)
	row := func(label, value string) {
		pdf.SetFont("Helvetica", "B", 12)
		pdf.CellFormat(55, 8, tr(label), "", 0, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 12)
		pdf.MultiCell(0, 8, tr(value), "", "L", false)
	}
	row("Name:", c.Citizen.GivenName+" "+c.Citizen.Surnames)
	row("DNI/NIE:", c.Citizen.ID)
	row("Registration level:", c.Citizen.Level)
	row("Method:", c.Citizen.Method)
	row("Mobile phone:", c.Citizen.Mobile)
	row("E-mail:", c.Citizen.Email)
	row("Registered on:", c.Citizen.UpdatedAt.In(madrid()).Format("2006-01-02 15:04 MST"))
	pdf.Ln(6)

	pdf.SetFont("Helvetica", "B", 13)
	pdf.CellFormat(0, 9, tr("Activation code for Cl@ve Permanente"), "", 1, "L", false, 0, "")
	pdf.SetFont("Courier", "B", 22)
	pdf.CellFormat(0, 16, c.ActivationCode, "1", 1, "C", false, 0, "")
	pdf.SetFont("Helvetica", "", 11)
	pdf.Ln(2)
	pdf.MultiCell(0, 6, tr(fmt.Sprintf("Valid until %s. Use it once, at %s, to set your Cl@ve Permanente password. "+
		"Keep this document private: anyone with the code and your DNI/NIE can set your password. "+
		"If it expires or is lost, ask for a new one at a registry office.",
		c.ActivationExpires.In(madrid()).Format("2006-01-02"), c.ServiceURL)), "", "L", false)
	if c.Citizen.Level == "basic" {
		pdf.Ln(2)
		pdf.MultiCell(0, 6, tr("The basic level identifies you but does not allow Cl@ve Firma (cloud signature). "+
			"To reach the advanced level, register in person at a registry office or online with an electronic certificate or DNIe."), "", "L", false)
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("confirmation pdf: %w", err)
	}
	return buf.Bytes(), nil
}

func madrid() *time.Location {
	if loc, err := time.LoadLocation(DefaultZone); err == nil {
		return loc
	}
	return time.UTC
}
