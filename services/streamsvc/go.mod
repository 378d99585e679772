module github.com/switchyard-io/switchyard/services/streamsvc

go 1.26.0
