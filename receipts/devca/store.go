package devca

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// The files Save writes. Keys are PKCS#8 PEM, readable by openssl.
const (
	rootCertFile         = "root.pem"
	rootKeyFile          = "root-key.pem"
	intermediateCertFile = "intermediate.pem"
	intermediateKeyFile  = "intermediate-key.pem"
	leafCertFile         = "leaf.pem"
	leafKeyFile          = "leaf-key.pem"
)

var allFiles = []string{rootCertFile, rootKeyFile, intermediateCertFile, intermediateKeyFile, leafCertFile, leafKeyFile}

// Save writes the chain and keys to dir as PEM: dir 0700, keys 0600, since
// whoever reads the keys can mint purchases for anything trusting the root.
func (ca *CA) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("devca: %w", err)
	}
	// MkdirAll leaves an existing dir's mode alone; tighten it anyway.
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("devca: %w", err)
	}
	files, err := ca.files()
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("devca: %w", err)
	}
	return nil
}

type file struct {
	name string
	data []byte
	mode os.FileMode
}

func (ca *CA) files() ([]file, error) {
	out := []file{
		{rootCertFile, certPEM(ca.Root), 0o644},
		{intermediateCertFile, certPEM(ca.Intermediate), 0o644},
		{leafCertFile, certPEM(ca.Leaf), 0o644},
	}
	for _, k := range []struct {
		name string
		key  *ecdsa.PrivateKey
	}{{rootKeyFile, ca.rootKey}, {intermediateKeyFile, ca.intermediateKey}, {leafKeyFile, ca.leafKey}} {
		data, err := keyPEM(k.key)
		if err != nil {
			return nil, err
		}
		out = append(out, file{k.name, data, 0o600})
	}
	return out, nil
}

// writeFile writes via a temporary file and rename, so a crash never leaves
// a half-written key, and sets mode even when the file already existed.
// The data is synced before the rename: otherwise a crash can leave the new
// name on a file whose data never reached the disk. The caller syncs the
// directory, to make the renames durable.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".devca-*")
	if err != nil {
		return fmt.Errorf("devca: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("devca: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("devca: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("devca: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("devca: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("devca: %w", err)
	}
	return nil
}

// syncDir makes the renames in dir durable. Windows cannot sync a
// directory, so there the renames are left to the file system.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("devca: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// LoadOrCreate loads the CA in dir, or creates and saves one valid from now
// if dir holds none. A dir holding only some of the files is an error rather
// than something to overwrite: it may be a CA someone still trusts.
func LoadOrCreate(dir string, now time.Time) (ca *CA, created bool, err error) {
	present := 0
	for _, name := range allFiles {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			present++
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("devca: %w", err)
		}
	}
	switch present {
	case len(allFiles):
		ca, err = Load(dir)
		return ca, false, err
	case 0:
		if ca, err = New(Options{Now: now}); err != nil {
			return nil, false, err
		}
		return ca, true, ca.Save(dir)
	}
	return nil, false, fmt.Errorf("devca: %s holds %d of the %d CA files", dir, present, len(allFiles))
}
