package receipts

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestErrorRetryable(t *testing.T) {
	for _, code := range []Code{CodeMalformed, CodeAlgorithm, CodeChainLength, CodeChain, CodeCertificate,
		CodeSignature, CodeAppIdentifier, CodeEnvironment, CodeInnerMismatch} {
		require.False(t, (&Error{Code: code}).Retryable(), code)
	}
	require.True(t, (&Error{Code: CodeConfig}).Retryable())
}

func TestErrorWrapping(t *testing.T) {
	cause := errors.New("x509: bad")
	err := fmt.Errorf("verify: %w", newError(CodeChain, cause, "chain does not lead to a trusted root"))
	var e *Error
	require.True(t, errors.As(err, &e))
	require.Equal(t, CodeChain, e.Code)
	require.ErrorIs(t, err, cause)
	require.Equal(t, "receipts: invalid_chain: chain does not lead to a trusted root: x509: bad", e.Error())
	require.Equal(t, "receipts: malformed_jws: no", newError(CodeMalformed, nil, "no").Error())

	inner := withContext(e, "signedTransactionInfo").(*Error)
	require.Equal(t, CodeChain, inner.Code)
	require.Equal(t, "signedTransactionInfo: chain does not lead to a trusted root", inner.Detail)
}
