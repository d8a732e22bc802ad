package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestLicenseName(t *testing.T) {
	for text, want := range map[string]string{
		"Apache License\n  Version 2.0, January 2004\n":                                                           "Apache-2.0",
		"Mozilla Public License Version 2.0\n==================================\n":                                "MPL-2.0",
		"The MIT License\n\nPermission is hereby granted, free of charge, to any person":                          "Expat",
		"Redistribution and use in source and binary forms, with or without\nmodification... Neither the name of": "BSD-3-clause",
		"Redistribution and use in source and binary forms, with or without\nmodification, are permitted":         "BSD-2-clause",
		"All rights reserved. Do not copy.":                                                                       "",
	} {
		if got, _ := licenseName([]byte(text)); got != want {
			t.Errorf("licenseName(%.40q) = %q, want %q", text, got, want)
		}
	}
}

// A paragraph carries the copyright lines and the license's text, with blank lines as " .";
// a license Debian ships is named, not copied; an unknown one is an error.
func TestParagraph(t *testing.T) {
	var w bytes.Buffer
	bsd := "Copyright (c) 2018 The Go Authors. All rights reserved.\n\nRedistribution and use in source and binary forms, with or without\nmodification, are permitted.\n"
	if err := paragraph(&w, "golang.org/x/sys/*", "Go module golang.org/x/sys", "v0.41.0", []byte(bsd)); err != nil {
		t.Fatal(err)
	}
	want := "\nFiles: golang.org/x/sys/*\nCopyright: (c) 2018 The Go Authors. All rights reserved.\nComment: Go module golang.org/x/sys v0.41.0\nLicense: BSD-2-clause\n" +
		" Copyright (c) 2018 The Go Authors. All rights reserved.\n .\n Redistribution and use in source and binary forms, with or without\n modification, are permitted.\n"
	if w.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", w.String(), want)
	}
	w.Reset()
	if err := paragraph(&w, "x/*", "x", "v1", []byte("Apache License\nVersion 2.0\n")); err != nil || !strings.Contains(w.String(), "License: Apache-2.0\n On Debian systems the full text of the license is in\n /usr/share/common-licenses/Apache-2.0.\n") || !strings.Contains(w.String(), "Copyright: the authors of x\n") {
		t.Errorf("Apache-2.0: %v\n%s", err, w.String())
	}
	if err := paragraph(&w, "y/*", "y", "v1", []byte("proprietary")); err == nil {
		t.Error("an unknown license was accepted")
	}
}
