package web

import (
	"fmt"
	"net/http"

	"github.com/firma-cloud/firma/web/langpick"
)

// Lang is a page language.
type Lang string

// The page languages. Spanish comes first: it is the default.
const (
	Spanish Lang = "es"
	English Lang = "en"
)

// langs are the page languages, the default first.
var langs = []Lang{Spanish, English}

// picker chooses among langs.
var picker = langpick.New(string(Spanish), string(English))

// langCookie remembers the language switch.
const langCookie = "firma-lang"

// pickLang chooses the page language: the ?lang= switch, then the
// remembered choice, then Accept-Language, then Spanish (langpick).
func pickLang(r *http.Request) (Lang, bool) {
	cookie := ""
	if c, err := r.Cookie(langCookie); err == nil {
		cookie = c.Value
	}
	code, switched := picker.Pick(r.URL.Query().Get("lang"), cookie, r.Header.Get("Accept-Language"))
	return Lang(code), switched
}

// other is the language the switch offers.
func (l Lang) other() Lang {
	if l == English {
		return Spanish
	}
	return English
}

// T returns the message key in l, formatted with args. A key missing in l
// falls back to Spanish, and a key missing there shows itself, so a gap
// is visible rather than blank.
func (l Lang) T(key string, args ...any) string {
	m, ok := messages[l][key]
	if !ok {
		if m, ok = messages[Spanish][key]; !ok {
			return key
		}
	}
	if len(args) == 0 {
		return m
	}
	return fmt.Sprintf(m, args...)
}

// messages are the page texts. Keys are shared by both languages; the
// test checks neither misses one.
var messages = map[Lang]map[string]string{
	Spanish: {
		"lang.name":               "Español",
		"lang.switch":             "English",
		"service":                 "Cl@ve Firma",
		"title":                   "Firma de documentos",
		"skip":                    "Saltar al contenido",
		"asks.one":                "%s le pide que firme 1 documento.",
		"asks.many":               "%s le pide que firme %d documentos.",
		"for":                     "Solicitud para: %s",
		"expires":                 "Esta solicitud caduca a las %s.",
		"docs":                    "Documentos que va a firmar",
		"docs.final":              "Documentos",
		"docs.signin":             "Podrá abrir cada documento antes de firmarlo, una vez identificado.",
		"doc.open":                "Abrir",
		"doc.download":            "Descargar",
		"err.no_document":         "Esta solicitud no tiene ese documento.",
		"confirm.when":            "Firmado el %s.",
		"confirm.next":            "En %[2]d segundos volverá a %[1]s.",
		"cert.final":              "Certificado de firma",
		"doc.name":                "Nombre",
		"doc.size":                "Tamaño",
		"doc.code":                "Código",
		"doc.format":              "Formato",
		"doc.digest_only":         "solo huella digital",
		"doc.status":              "Estado",
		"cert":                    "Certificado con el que se firmará",
		"cert.subject":            "Titular",
		"cert.issuer":             "Emisor",
		"cert.serial":             "Número de serie",
		"cert.valid":              "Válido hasta",
		"cert.will_issue":         "Aún no tiene certificado de firma: se le emitirá uno al aprobar esta firma.",
		"cert.none":               "No se puede mostrar el certificado.",
		"code":                    "Código de verificación",
		"code.help":               "El SMS que reciba mostrará este mismo código. Compruebe que coinciden antes de firmar.",
		"login":                   "Identifíquese con Cl@ve Permanente",
		"login.help":              "Use su DNI o NIE y su contraseña de Cl@ve Permanente. Después le enviaremos un código por SMS.",
		"login.then":              "Tras identificarse verá el certificado con el que firmará y podrá firmar o rechazar la solicitud.",
		"login.id":                "DNI o NIE",
		"login.password":          "Contraseña",
		"login.submit":            "Acceder y recibir el código",
		"otp":                     "Introduzca el código que ha recibido por SMS",
		"otp.sent":                "Hemos enviado un código de 6 dígitos al teléfono %s. Caduca a las %s.",
		"otp.label":               "Código SMS (6 dígitos)",
		"otp.tries":               "Le quedan %d intentos.",
		"otp.tries.one":           "Le queda 1 intento.",
		"otp.approve":             "Firmar los documentos",
		"otp.reject":              "Rechazar la firma",
		"otp.resend":              "Enviar un código nuevo",
		"otp.resends":             "Puede pedir %d códigos nuevos más.",
		"otp.resend_at":           "Podrá pedir un código nuevo a partir de las %s.",
		"otp.no_resends":          "Ya no puede pedir más códigos.",
		"otp.send":                "Enviar el código por SMS",
		"otp.send_help":           "Ha accedido correctamente. Pulse para recibir el código de firma por SMS.",
		"reject.help":             "Si no reconoce esta solicitud, recházela: el portal sabrá que no ha firmado.",
		"leave":                   "Volver a %s sin firmar",
		"back":                    "Volver a %s",
		"signing":                 "Estamos firmando sus documentos. Esta página se actualizará sola.",
		"signing.progress":        "%d de %d documentos procesados.",
		"signing.close":           "Puede cerrar esta página: la firma continúa y el organismo recibirá el resultado.",
		"done":                    "Documentos firmados. Puede volver a %s.",
		"final.done":              "Esta solicitud ya se firmó.",
		"final.rejected":          "Rechazó esta solicitud de firma. No se ha firmado nada.",
		"final.expired":           "Esta solicitud de firma ha caducado sin firmarse. Vuelva al portal y empiece de nuevo.",
		"final.cancelled":         "El portal canceló esta solicitud de firma. No se ha firmado nada.",
		"final.failed":            "Esta solicitud de firma ha fallado. No se ha firmado nada.",
		"final.otp_locked":        "Ha introducido un código incorrecto demasiadas veces. Por su seguridad, la solicitud se ha anulado y no se ha firmado nada.",
		"err.bad_credentials":     "DNI/NIE o contraseña incorrectos.",
		"err.credential_locked":   "Su contraseña de Cl@ve Permanente está bloqueada. Pida un nuevo código de activación en una oficina de registro o regístrese de nuevo con su certificado electrónico o DNIe.",
		"err.citizen_mismatch":    "Esta solicitud de firma es para otra persona. Identifíquese con el DNI/NIE al que va dirigida.",
		"err.otp_invalid":         "Código incorrecto.",
		"err.otp_expired":         "El código ha caducado. Pida uno nuevo.",
		"err.otp_not_sent":        "Todavía no se ha enviado ningún código. Pida uno.",
		"err.otp_resend_limit":    "Ya se han enviado todos los códigos permitidos. Vuelva al portal y empiece de nuevo.",
		"err.otp_resend_too_soon": "Espere un poco antes de pedir otro código.",
		"err.otp_channel_locked":  "Se han introducido demasiados códigos incorrectos en sus firmas (aquí o en otro servicio). Por su seguridad no se envían ni se comprueban códigos hasta las %s. Esta solicitud sigue pendiente hasta que caduque.",
		"err.sms_failed":          "No se ha podido enviar el SMS. No se ha contado como enviado: inténtelo de nuevo.",
		"err.already_used":        "Esta solicitud ya se aprobó o se cerró: el formulario no se puede enviar dos veces.",
		"err.session_invalid":     "Su sesión ha terminado o no es válida. Identifíquese de nuevo.",
		"err.csrf":                "El formulario ha caducado o no procede de esta página. Vuelva a cargar la página e inténtelo de nuevo.",
		"err.invalid_request":     "Los datos enviados no son válidos. Revíselos.",
		"err.not_found":           "La solicitud de firma no existe o ya no está disponible. Vuelva al portal.",
		"err.invalid_state":       "Este paso ya no es posible. La página muestra el estado actual.",
		"err.unavailable":         "El servicio no está disponible en este momento. Inténtelo de nuevo en unos minutos.",
		"err.rate_limited":        "Demasiados intentos desde esta conexión. Espere un momento e inténtelo de nuevo.",
		"err.internal":            "Se ha producido un error. Inténtelo de nuevo.",
		"err.certificate_blocked": "Su certificado de firma o su registro en Cl@ve están bloqueados: no puede firmar. Diríjase a una oficina de registro.",
		"err.no_certificate":      "No tiene un certificado de firma válido y ahora no se le puede emitir uno. Inténtelo más tarde o diríjase a una oficina de registro.",
		"err.weak_registration":   "Su registro en Cl@ve es de nivel básico, que no permite firmar. Pase al nivel avanzado en una oficina de registro o con su certificado electrónico o DNIe.",
		"err.forbidden":           "No puede firmar esta solicitud.",
		"err.otp_format":          "El código tiene 6 dígitos.",
		"err.missing_id":          "Escriba su DNI o NIE.",
		"err.missing_password":    "Escriba su contraseña.",
		"notice.sent":             "Le hemos enviado el código por SMS.",
		"notice.resent":           "Le hemos enviado un código nuevo. El anterior ya no vale.",
		"security":                "Nunca comparta su contraseña ni el código SMS. La administración nunca se los pedirá por teléfono ni por correo.",
		"state.pending":           "Pendiente",
		"state.signed":            "Firmado",
		"state.not_processed":     "No procesado",
		"state.aborted":           "Interrumpido",
		"state.failed":            "Fallido",
		"bytes":                   "%s bytes",
		"kb":                      "%s KB",
		"mb":                      "%s MB",
	},
	English: {
		"lang.name":               "English",
		"lang.switch":             "Español",
		"service":                 "Cl@ve Firma",
		"title":                   "Sign documents",
		"skip":                    "Skip to content",
		"asks.one":                "%s asks you to sign 1 document.",
		"asks.many":               "%s asks you to sign %d documents.",
		"for":                     "Request for: %s",
		"expires":                 "This request expires at %s.",
		"docs":                    "Documents you are going to sign",
		"docs.final":              "Documents",
		"docs.signin":             "Once you have signed in, you can open each document before signing it.",
		"doc.open":                "Open",
		"doc.download":            "Download",
		"err.no_document":         "This request has no such document.",
		"confirm.when":            "Signed on %s.",
		"confirm.next":            "In %[2]d seconds you will go back to %[1]s.",
		"cert.final":              "Signing certificate",
		"doc.name":                "Name",
		"doc.size":                "Size",
		"doc.code":                "Code",
		"doc.format":              "Format",
		"doc.digest_only":         "digest only",
		"doc.status":              "Status",
		"cert":                    "Certificate that will sign",
		"cert.subject":            "Holder",
		"cert.issuer":             "Issuer",
		"cert.serial":             "Serial number",
		"cert.valid":              "Valid until",
		"cert.will_issue":         "You have no signing certificate yet: one will be issued to you when you approve this signature.",
		"cert.none":               "The certificate cannot be shown.",
		"code":                    "Verification code",
		"code.help":               "The SMS you receive shows this same code. Check that they match before you sign.",
		"login":                   "Sign in with Cl@ve Permanente",
		"login.help":              "Use your DNI or NIE and your Cl@ve Permanente password. We will then send you a code by SMS.",
		"login.then":              "Once signed in you will see the certificate you will sign with, and can sign or reject the request.",
		"login.id":                "DNI or NIE",
		"login.password":          "Password",
		"login.submit":            "Sign in and get the code",
		"otp":                     "Enter the code you received by SMS",
		"otp.sent":                "We sent a 6-digit code to the phone %s. It expires at %s.",
		"otp.label":               "SMS code (6 digits)",
		"otp.tries":               "You have %d tries left.",
		"otp.tries.one":           "You have 1 try left.",
		"otp.approve":             "Sign the documents",
		"otp.reject":              "Reject the signature",
		"otp.resend":              "Send a new code",
		"otp.resends":             "You can ask for %d more codes.",
		"otp.resend_at":           "You can ask for a new code from %s.",
		"otp.no_resends":          "You cannot ask for more codes.",
		"otp.send":                "Send the code by SMS",
		"otp.send_help":           "You are signed in. Press to receive the signing code by SMS.",
		"reject.help":             "If you do not recognise this request, reject it: the portal will know you did not sign.",
		"leave":                   "Back to %s without signing",
		"back":                    "Back to %s",
		"signing":                 "We are signing your documents. This page will refresh by itself.",
		"signing.progress":        "%d of %d documents processed.",
		"signing.close":           "You may close this page: signing goes on and the portal will get the result.",
		"done":                    "Documents signed. You can go back to %s.",
		"final.done":              "This request has already been signed.",
		"final.rejected":          "You rejected this signature request. Nothing was signed.",
		"final.expired":           "This signature request expired unsigned. Go back to the portal and start again.",
		"final.cancelled":         "The portal cancelled this signature request. Nothing was signed.",
		"final.failed":            "This signature request failed. Nothing was signed.",
		"final.otp_locked":        "You entered a wrong code too many times. For your safety the request was cancelled and nothing was signed.",
		"err.bad_credentials":     "Wrong DNI/NIE or password.",
		"err.credential_locked":   "Your Cl@ve Permanente password is locked. Ask for a new activation code at a registry office, or register again with your electronic certificate or DNIe.",
		"err.citizen_mismatch":    "This signature request is for someone else. Sign in with the DNI/NIE it is addressed to.",
		"err.otp_invalid":         "Wrong code.",
		"err.otp_expired":         "The code has expired. Ask for a new one.",
		"err.otp_not_sent":        "No code has been sent yet. Ask for one.",
		"err.otp_resend_limit":    "All the codes allowed have been sent. Go back to the portal and start again.",
		"err.otp_resend_too_soon": "Wait a little before asking for another code.",
		"err.otp_channel_locked":  "Too many wrong codes were entered for your signatures (here or on another service). For your safety no code is sent or checked until %s. This request stays open until it expires.",
		"err.sms_failed":          "The SMS could not be sent. It did not count as sent: try again.",
		"err.already_used":        "This request was already approved or closed: the form cannot be sent twice.",
		"err.session_invalid":     "Your session has ended or is not valid. Sign in again.",
		"err.csrf":                "The form has expired or did not come from this page. Reload the page and try again.",
		"err.invalid_request":     "The data sent is not valid. Please check it.",
		"err.not_found":           "The signature request does not exist or is no longer available. Go back to the portal.",
		"err.invalid_state":       "This step is no longer possible. The page shows the current state.",
		"err.unavailable":         "The service is unavailable right now. Try again in a few minutes.",
		"err.rate_limited":        "Too many attempts from this connection. Wait a moment and try again.",
		"err.internal":            "Something went wrong. Please try again.",
		"err.certificate_blocked": "Your signing certificate or your Cl@ve registration is blocked: you cannot sign. Go to a registry office.",
		"err.no_certificate":      "You have no valid signing certificate and one cannot be issued now. Try again later or go to a registry office.",
		"err.weak_registration":   "Your Cl@ve registration is at the basic level, which cannot sign. Move to the advanced level at a registry office or with your electronic certificate or DNIe.",
		"err.forbidden":           "You cannot sign this request.",
		"err.otp_format":          "The code has 6 digits.",
		"err.missing_id":          "Enter your DNI or NIE.",
		"err.missing_password":    "Enter your password.",
		"notice.sent":             "We sent you the code by SMS.",
		"notice.resent":           "We sent you a new code. The previous one no longer works.",
		"security":                "Never share your password or the SMS code. The administration will never ask you for them by phone or email.",
		"state.pending":           "Pending",
		"state.signed":            "Signed",
		"state.not_processed":     "Not processed",
		"state.aborted":           "Aborted",
		"state.failed":            "Failed",
		"bytes":                   "%s bytes",
		"kb":                      "%s KB",
		"mb":                      "%s MB",
	},
}
