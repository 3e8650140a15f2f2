package awsjson

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Protocol selects where ParseError looks for the error code first.
type Protocol int

const (
	// JSON11 is awsJson1.1: the body's "__type" first, then "code", then X-Amzn-ErrorType.
	JSON11 Protocol = iota
	// RestJSON1 is restJson1: X-Amzn-ErrorType first, then the body's "__type", then "code".
	RestJSON1
)

// ErrorInfo is what an error answer says about itself.
type ErrorInfo struct {
	// Code is the error code without namespace or URL suffix; empty when the answer names none.
	Code string
	// Message is the body's "message" (or "Message").
	Message string
	// RequestID is X-Amzn-RequestId.
	RequestID string
	// RetryAfter is the Retry-After header in seconds, zero when absent or not a number.
	RetryAfter time.Duration
}

// ParseError reads the error code, message, request id and Retry-After of an error answer.
func ParseError(p Protocol, resp *Response) ErrorInfo {
	var doc struct {
		Type     string `json:"__type"`
		Code     string `json:"code"`
		Message  string `json:"message"`
		MessageU string `json:"Message"`
	}
	_ = json.Unmarshal(resp.Body, &doc)
	candidates := []string{doc.Type, doc.Code, resp.Header.Get("X-Amzn-ErrorType")}
	if p == RestJSON1 {
		candidates = []string{resp.Header.Get("X-Amzn-ErrorType"), doc.Type, doc.Code}
	}
	info := ErrorInfo{Message: doc.Message, RequestID: resp.Header.Get("X-Amzn-RequestId")}
	if info.Message == "" {
		info.Message = doc.MessageU
	}
	for _, c := range candidates {
		if info.Code = SanitizeCode(c); info.Code != "" {
			break
		}
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil && s >= 0 {
			info.RetryAfter = time.Duration(s) * time.Second
		}
	}
	return info
}

// SanitizeCode strips the URL suffix ("Code:http://...") and the namespace ("ns#Code") the AWS JSON
// protocols allow in an error type, in that order, as the Smithy protocol specifications say.
func SanitizeCode(code string) string {
	if i := strings.IndexByte(code, ':'); i >= 0 {
		code = code[:i]
	}
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	return strings.TrimSpace(code)
}
