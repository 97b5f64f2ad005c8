package translator

import (
	"errors"
	"unicode/utf8"
)

func isErr(err, target error) bool { return errors.Is(err, target) }

func isValidUTF8(s string) bool { return utf8.ValidString(s) }
