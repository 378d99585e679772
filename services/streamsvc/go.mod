module github.com/switchyard-io/switchyard/services/streamsvc

go 1.26.0

require github.com/stretchr/testify v1.12.1 // indirect
