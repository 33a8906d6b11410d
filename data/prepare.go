package data

import "fmt"

// Open loads a data set the way every command names it: by name (dataset),
// or as a pair of files (trainSpec, testSpec; see Load). Both sets are
// normalized with the statistics of the training set.
func Open(dataset, trainSpec, testSpec string) (train, test *Dataset, norm Norm, err error) {
	if train, test, err = openRaw(dataset, trainSpec, testSpec); err != nil {
		return nil, nil, norm, err
	}
	norm = Stats(train)
	norm.Apply(train)
	norm.Apply(test)
	return train, test, norm, nil
}

func openRaw(dataset, trainSpec, testSpec string) (train, test *Dataset, err error) {
	switch {
	case dataset != "" && (trainSpec != "" || testSpec != ""):
		return nil, nil, fmt.Errorf("give either --dataset or --train/--test, not both")
	case dataset != "":
		return Named(dataset, "")
	case trainSpec != "" && testSpec != "":
		return Files(trainSpec, testSpec)
	}
	return nil, nil, fmt.Errorf("no data: give --dataset NAME or --train FILE --test FILE")
}

// OpenTest loads only the test set of a data set named as in Open, with its
// values raw: the caller normalizes it as the model it evaluates was
// trained. With --test alone (no --train) labels are checked against
// classes.
func OpenTest(dataset, testSpec string, classes int) (*Dataset, error) {
	switch {
	case dataset != "" && testSpec != "":
		return nil, fmt.Errorf("give either --dataset or --test, not both")
	case dataset != "":
		_, test, err := Named(dataset, "")
		return test, err
	case testSpec != "":
		return Load(testSpec, classes)
	}
	return nil, fmt.Errorf("no data: give --dataset NAME or --test FILE")
}
