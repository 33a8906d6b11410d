package data

import "fmt"

// Open loads a data set the way every command names it: by name (dataset),
// or as a pair of files (trainSpec, testSpec; see Load). Both sets are
// normalized with the statistics of the training set.
func Open(dataset, trainSpec, testSpec string) (train, test *Dataset, norm Norm, err error) {
	switch {
	case dataset != "" && (trainSpec != "" || testSpec != ""):
		return nil, nil, norm, fmt.Errorf("give either --dataset or --train/--test, not both")
	case dataset != "":
		train, test, err = Named(dataset, "")
	case trainSpec != "" && testSpec != "":
		train, test, err = Files(trainSpec, testSpec)
	default:
		return nil, nil, norm, fmt.Errorf("no data: give --dataset NAME or --train FILE --test FILE")
	}
	if err != nil {
		return nil, nil, norm, err
	}
	norm = Stats(train)
	norm.Apply(train)
	norm.Apply(test)
	return train, test, norm, nil
}
